"""The pure core ``decide``: the resource cap, exclusive environments and their edges."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from importlib import resources

import pytest

from policy import APPLIED_EVENT_MEMORY, RULES, Verdict, decide, summarize
from schemas.decisions import StateSummary
from schemas.events import ClockTick, InputEvent, Subject
from schemas.policy import Policy, parse_policy
from schemas.state import SubjectState
from tests.factories import T0, at, event, raw_event, raw_request, request, variant

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text()).policy
CAP = POLICY.defaults.caps.max_active_resources
RULE_ORDER = [rule.id for rule in RULES]


def summary(grants: int, resources_: int, *envs: str) -> StateSummary:
    return StateSummary(active_grants=grants, active_resources=resources_, envs=envs)


def run(events: Iterable[InputEvent], policy: Policy = POLICY,
        state: SubjectState | None = None) -> tuple[SubjectState, list[Verdict]]:
    """Apply events in order, each at its own time, checking every verdict's summaries."""
    state = state or SubjectState()
    verdicts: list[Verdict] = []
    for item in events:
        new_state, made = decide(state, item, item.at, policy)
        assert_summaries(state, made, new_state)
        state = new_state
        verdicts.extend(made)
    return state, verdicts


def assert_summaries(old: SubjectState, verdicts: Iterable[Verdict],
                     new: SubjectState) -> None:
    """Each verdict's before/after chain from the old state's holdings to the new state's."""
    current = summarize(old.grants)
    for verdict in verdicts:
        assert verdict.before == current, verdict
        delta = verdict.after.active_grants - verdict.before.active_grants
        assert delta == {"approve": 1, "revoke": -1}.get(verdict.action, delta)
        if verdict.action in ("deny", "escalate"):
            assert verdict.after == verdict.before
        for summary in (verdict.before, verdict.after):
            assert list(summary.envs) == sorted(set(summary.envs))
        current = verdict.after
    assert current == summarize(new.grants)


def brief(verdicts: Iterable[Verdict]) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    return [(v.action, v.rule.id, v.request_id, v.targets) for v in verdicts]


def live(state: SubjectState) -> list[str]:
    return [grant.request_id for grant in state.grants]


def held(state: SubjectState) -> set[str]:
    return {resource.id for grant in state.grants for resource in grant.resources}


def singles(count: int, env: str = "prod", start: int = 0) -> list[InputEvent]:
    """``count`` one-resource requests r-0, r-1, … one second apart."""
    return [request(f"r-{n}", [(f"x{n}", env)], t=n) for n in range(start, start + count)]


# ---------------------------------------------------------------- rule (a): the resource cap


class TestResourceCap:
    def test_cap_reached_by_separate_grants_revokes_nothing(self) -> None:
        state, verdicts = run(singles(CAP))
        assert brief(verdicts) == [("approve", "auto-approve", f"r-{n}", ()) for n in range(CAP)]
        assert verdicts[-1].after.active_resources == CAP
        assert live(state) == [f"r-{n}" for n in range(CAP)]

    def test_one_request_of_exactly_the_cap_is_approved(self) -> None:
        state, verdicts = run([request("r-1", [(f"x{n}", "prod") for n in range(CAP)])])
        assert brief(verdicts) == [("approve", "auto-approve", "r-1", ())]
        assert verdicts[0].resources == tuple(f"x{n}" for n in range(CAP))
        assert len(held(state)) == CAP

    def test_one_over_revokes_exactly_the_oldest(self) -> None:
        state, verdicts = run([*singles(CAP), request("r-new", [("y", "prod")], t=10)])
        last = verdicts[-2:]
        assert brief(last) == [("approve", "auto-approve", "r-new", ()),
                               ("revoke", "max-active-resources", "r-0", ("r-0",))]
        revoke = last[1]
        assert revoke.resources == ("x0",)
        assert revoke.at == at(10)
        assert revoke.expires_at is None
        assert revoke.reason == (
            f"subject holds {CAP + 1} resources, limit is {CAP}: oldest grant r-0 revoked")
        assert (revoke.before.active_resources, revoke.after.active_resources) == (CAP + 1, CAP)
        assert live(state) == ["r-1", "r-2", "r-new"]

    def test_multi_resource_oldest_frees_several_so_one_revoke_suffices(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod"), ("b", "prod")]),
            request("r-2", [("c", "prod")], t=1),
            request("r-3", [("d", "prod")], t=2),
        ])
        assert brief(verdicts)[-1] == ("revoke", "max-active-resources", "r-1", ("r-1",))
        assert [v.action for v in verdicts].count("revoke") == 1
        assert verdicts[-1].resources == ("a", "b")
        assert (verdicts[-1].before.active_resources, verdicts[-1].after.active_resources) \
            == (4, 2)
        assert live(state) == ["r-2", "r-3"]

    @pytest.mark.parametrize("size", [1, 2, 3])
    def test_only_as_many_oldest_grants_as_needed_are_revoked(self, size: int) -> None:
        new = request("r-new", [(f"y{n}", "prod") for n in range(size)], t=10)
        state, verdicts = run([*singles(CAP), new])
        revoked = [v.targets for v in verdicts if v.action == "revoke"]
        assert revoked == [(f"r-{n}",) for n in range(size)]
        assert all(v.rule.id == "max-active-resources" for v in verdicts if v.action == "revoke")
        assert live(state) == [f"r-{n}" for n in range(size, CAP)] + ["r-new"]
        assert len(held(state)) == CAP

    def test_a_large_oldest_grant_spares_the_newer_ones(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod"), ("b", "prod"), ("c", "prod")]),
            request("r-2", [("d", "prod"), ("e", "prod")], t=1),
        ])
        assert [v.targets for v in verdicts if v.action == "revoke"] == [("r-1",)]
        assert live(state) == ["r-2"]

    @pytest.mark.parametrize("order", [("r-z", "r-a", "r-m"), ("r-a", "r-z", "r-m"),
                                       ("r-m", "r-z", "r-a")])
    def test_ties_in_time_revoke_the_earlier_arrival(self, order: tuple[str, ...]) -> None:
        tied = [request(rid, [(f"x-{rid}", "prod")], t=5) for rid in order]
        state, verdicts = run([*tied, request("r-new", [("y", "prod")], t=6)])
        assert [v.targets for v in verdicts if v.action == "revoke"] == [(order[0],)]
        assert live(state) == [*order[1:], "r-new"]

    def test_ties_in_time_with_two_revokes_follow_arrival(self) -> None:
        tied = [request(rid, [(f"x-{rid}", "prod")], t=5) for rid in ("r-c", "r-b", "r-a")]
        _, verdicts = run([*tied, request("r-new", [("y", "prod"), ("z", "prod")], t=5)])
        assert [v.targets for v in verdicts if v.action == "revoke"] == [("r-c",), ("r-b",)]

    def test_oldest_is_by_grant_time_not_arrival(self) -> None:
        """A late event's grant is older in event time, so it goes first."""
        state, verdicts = run([
            request("r-1", [("a", "prod")], t=50),
            request("r-2", [("b", "prod")], t=60),
            request("r-late", [("c", "prod")], t=10),
            request("r-4", [("d", "prod")], t=70),
        ])
        assert [v.targets for v in verdicts if v.action == "revoke"] == [("r-late",)]
        assert live(state) == ["r-1", "r-2", "r-4"]

    def test_a_resource_in_several_grants_counts_once(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("a", "prod"), ("b", "prod")], t=1),
            request("r-3", [("b", "prod"), ("c", "prod")], t=2),
            request("r-4", [("a", "prod"), ("c", "prod")], t=3),
        ])
        assert [v.action for v in verdicts] == ["approve"] * 4
        assert [v.after.active_resources for v in verdicts] == [1, 2, 3, 3]
        assert [v.after.active_grants for v in verdicts] == [1, 2, 3, 4]
        assert held(state) == {"a", "b", "c"}

    def test_a_shared_resource_counts_once_when_going_over(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod"), ("b", "prod")]),
            request("r-2", [("b", "prod"), ("c", "prod")], t=1),
            request("r-3", [("c", "prod"), ("d", "prod")], t=2),
        ])
        [revoke] = [v for v in verdicts if v.action == "revoke"]
        assert revoke.targets == ("r-1",)
        assert (revoke.before.active_resources, revoke.after.active_resources) == (4, 3)
        assert held(state) == {"b", "c", "d"}

    def test_request_over_the_cap_is_denied_and_changes_no_grant(self) -> None:
        before, _ = run(singles(2))
        state, verdicts = run([request("r-big", [(x, "prod") for x in "abcd"], t=10)],
                              state=before)
        assert brief(verdicts) == [("deny", "max-active-resources", "r-big", ())]
        assert verdicts[0].reason == f"request asks for 4 resources, limit is {CAP}"
        assert verdicts[0].resources == ("a", "b", "c", "d")
        assert verdicts[0].expires_at is None
        assert state.grants == before.grants

    @pytest.mark.parametrize(("ids", "action"), [
        ("aabc", "approve"),
        ("aaaa", "approve"),
        ("abcabc", "approve"),
        ("abcdd", "deny"),
    ])
    def test_duplicate_ids_within_one_request_count_once(self, ids: str,
                                                         action: str) -> None:
        state, verdicts = run([request("r-1", [(x, "prod") for x in ids])])
        assert [v.action for v in verdicts] == [action]
        assert len(held(state)) == (len(set(ids)) if action == "approve" else 0)
        if action == "approve":
            assert verdicts[0].after.active_resources == len(set(ids))

    @pytest.mark.parametrize("cap", [1, 2, 5])
    def test_the_cap_comes_from_the_policy(self, cap: int) -> None:
        policy = variant(POLICY, caps={"max_active_resources": cap,
                                       "max_resources_per_request": cap})
        state, verdicts = run([*singles(cap + 1)], policy=policy)
        assert [v.targets for v in verdicts if v.action == "revoke"] == [("r-0",)]
        assert len(held(state)) == cap
        _, denied = run([request("r-x", [(f"y{n}", "prod") for n in range(cap + 1)])],
                        policy=policy)
        assert brief(denied) == [("deny", "max-active-resources", "r-x", ())]


# ---------------------------------------------------------------- rule (b): exclusive envs


class TestExclusiveEnvironments:
    @pytest.mark.parametrize("pair", [[("db", "prod"), ("nb", "research")],
                                      [("nb", "research"), ("ci", "staging"), ("db", "prod")],
                                      [("same", "prod"), ("same", "research")]])
    def test_one_request_spanning_both_is_denied(self, pair: list[tuple[str, str]]) -> None:
        state, verdicts = run([request("r-1", pair)])
        assert brief(verdicts) == [("deny", "exclusive-environments", "r-1", ())]
        assert "prod and research" in verdicts[0].reason
        assert "prod-vs-research" in verdicts[0].reason
        assert state.grants == ()

    def test_spanning_request_leaves_existing_grants_alone(self) -> None:
        before, _ = run([request("r-1", [("a", "prod")]),
                         request("r-2", [("b", "staging")], t=1)])
        state, verdicts = run([request("r-3", [("c", "prod"), ("d", "research")], t=2)],
                              state=before)
        assert [v.action for v in verdicts] == ["deny"]
        assert state.grants == before.grants

    @pytest.mark.parametrize(("old", "new"), [("prod", "research"), ("research", "prod")])
    def test_new_grant_revokes_older_grants_in_the_other_env_only(self, old: str,
                                                                  new: str) -> None:
        state, verdicts = run([
            request("r-1", [("a", old)]),
            request("r-2", [("b", "staging")], t=1),
            request("r-3", [("c", new)], t=2),
            request("r-4", [("d", new)], t=3),
        ])
        assert brief(verdicts)[2:] == [
            ("approve", "auto-approve", "r-3", ()),
            ("revoke", "exclusive-environments", "r-1", ("r-1",)),
            ("approve", "auto-approve", "r-4", ()),
        ]
        revoke = verdicts[3]
        assert revoke.reason == (f"new grant r-3 in {new} excludes {old}: older grant r-1 "
                                 "revoked")
        assert revoke.resources == ("a",)
        assert revoke.at == at(2)
        assert (revoke.before.envs, revoke.after.envs) == (
            tuple(sorted((old, new, "staging"))), tuple(sorted((new, "staging"))))
        assert live(state) == ["r-2", "r-3", "r-4"]

    def test_one_revoke_per_conflicting_grant_in_grant_order(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "research")]),
            request("r-2", [("b", "staging")], t=1),
            request("r-3", [("c", "research")], t=2),
            request("r-4", [("d", "prod")], t=3),
        ])
        revokes = [v for v in verdicts if v.action == "revoke"]
        assert [(v.rule.id, v.targets) for v in revokes] == [
            ("exclusive-environments", ("r-1",)), ("exclusive-environments", ("r-3",))]
        assert live(state) == ["r-2", "r-4"]

    def test_a_mixed_older_grant_ends_whole(self) -> None:
        """The staging part of an older research+staging grant ends with it."""
        state, verdicts = run([
            request("r-1", [("nb", "research"), ("ci", "staging")]),
            request("r-2", [("db", "prod")], t=1),
        ])
        assert brief(verdicts)[-1] == ("revoke", "exclusive-environments", "r-1", ("r-1",))
        assert verdicts[-1].resources == ("nb", "ci")
        assert live(state) == ["r-2"]

    def test_a_grant_outside_every_group_revokes_nothing(self) -> None:
        state, verdicts = run([request("r-1", [("a", "research")]),
                               request("r-2", [("b", "staging"), ("c", "dev")], t=1)])
        assert [v.action for v in verdicts] == ["approve", "approve"]
        assert live(state) == ["r-1", "r-2"]

    def test_same_resource_id_in_the_other_env_is_still_a_conflict(self) -> None:
        state, verdicts = run([request("r-1", [("db", "research")]),
                               request("r-2", [("db", "prod")], t=1)])
        assert brief(verdicts)[-1] == ("revoke", "exclusive-environments", "r-1", ("r-1",))
        assert [r.env for g in state.grants for r in g.resources] == ["prod"]


class TestCombinations:
    def test_conflict_revoke_then_cap_revoke_in_one_event(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "staging"), ("b", "staging")]),
            request("r-2", [("c", "research")], t=1),
            request("r-3", [("d", "prod"), ("e", "prod")], t=2),
        ])
        assert brief(verdicts)[2:] == [
            ("approve", "auto-approve", "r-3", ()),
            ("revoke", "exclusive-environments", "r-2", ("r-2",)),
            ("revoke", "max-active-resources", "r-1", ("r-1",)),
        ]
        assert [v.at for v in verdicts[2:]] == [at(2)] * 3
        assert [(v.before.active_resources, v.after.active_resources)
                for v in verdicts[2:]] == [(3, 5), (5, 4), (4, 2)]
        assert live(state) == ["r-3"]

    def test_conflict_revoke_alone_brings_it_under_the_cap(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "research"), ("b", "research")]),
            request("r-2", [("c", "staging")], t=1),
            request("r-3", [("d", "prod")], t=2),
        ])
        assert [(v.action, v.rule.id) for v in verdicts[2:]] == [
            ("approve", "auto-approve"), ("revoke", "exclusive-environments")]
        assert live(state) == ["r-2", "r-3"]

    def test_cap_revokes_skip_grants_already_ended_by_conflict(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "research")]),
            request("r-2", [("b", "staging")], t=1),
            request("r-3", [("c", "staging")], t=2),
            request("r-4", [("d", "prod"), ("e", "prod")], t=3),
        ])
        assert [(v.rule.id, v.targets) for v in verdicts if v.action == "revoke"] == [
            ("exclusive-environments", ("r-1",)), ("max-active-resources", ("r-2",))]
        assert live(state) == ["r-3", "r-4"]

    def test_expiry_then_conflict_then_cap(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "staging")], ttl_s=50),
            request("r-2", [("b", "staging")], t=1),
            request("r-3", [("c", "research")], t=2),
            request("r-5", [("e", "prod"), ("f", "prod"), ("g", "prod")], t=100),
        ])
        assert [(v.action, v.rule.id, v.targets, v.at) for v in verdicts[3:]] == [
            ("revoke", "ttl-expired", ("r-1",), at(50)),
            ("approve", "auto-approve", (), at(100)),
            ("revoke", "exclusive-environments", ("r-3",), at(100)),
            ("revoke", "max-active-resources", ("r-2",), at(100)),
        ]
        assert live(state) == ["r-5"]


# ---------------------------------------------------------------- deny wins


class TestDenyWins:
    def test_several_objections_name_the_first_in_rule_order(self) -> None:
        raw = raw_request("r-1", [("a", "prod"), ("b", "prod"), ("c", "research"),
                                  ("d", "staging")], reason=None)
        [verdict] = run([event(raw)])[1]
        assert (verdict.action, verdict.rule.id) == ("deny", "max-active-resources")
        head, also = verdict.reason.split("; also: ")
        assert head == f"request asks for 4 resources, limit is {CAP}"
        assert also.index("request spans mutually exclusive prod and research") \
            < also.index("a reason is required from sensitivity medium")

    def test_reused_id_is_named_before_later_objections(self) -> None:
        before, _ = run([request("r-1", [("a", "prod")])])
        state, verdicts = run([request("r-1", [("b", "prod"), ("c", "research")], t=1,
                                       event_id="e-2")], state=before)
        [verdict] = verdicts
        assert verdict.rule.id == "request-id-reused"
        assert RULE_ORDER.index("request-id-reused") < RULE_ORDER.index(
            "exclusive-environments")
        assert "mutually exclusive" in verdict.reason
        assert state.grants == before.grants

    def test_a_single_objection_has_no_also(self) -> None:
        [verdict] = run([request("r-1", [("a", "prod"), ("b", "research")])])[1]
        assert "also" not in verdict.reason

    def test_reusing_a_live_request_id_is_denied(self) -> None:
        before, _ = run([request("r-1", [("a", "prod")], ttl_s=600)])
        state, verdicts = run([request("r-1", [("b", "prod")], t=1, event_id="e-again")],
                              state=before)
        assert brief(verdicts) == [("deny", "request-id-reused", "r-1", ())]
        assert verdicts[0].reason == "request r-1 is already live or pending"
        assert state.grants == before.grants

    @pytest.mark.parametrize("end", ["request.withdrawn", "task.completed"])
    def test_an_ended_request_id_may_be_used_again(self, end: str) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            event(raw_event(end, event_id="e-end", t=1, request_id="r-1")),
            request("r-1", [("b", "prod")], t=2, event_id="e-again"),
        ])
        assert [v.action for v in verdicts] == ["approve", "revoke", "approve"]
        assert [r.id for r in state.grants[0].resources] == ["b"]

    def test_review_with_nothing_pending_is_denied(self) -> None:
        before, _ = run([request("r-1", [("a", "prod")])])
        review = event(raw_event("request.reviewed", event_id="e-rev", t=1, request_id="r-1",
                                 reviewer={"id": "bob"}, outcome="approved"))
        state, verdicts = run([review], state=before)
        assert brief(verdicts) == [("deny", "review-not-pending", "r-1", ())]
        assert "not waiting for review" in verdicts[0].reason
        assert state.grants == before.grants

    def test_a_denied_request_never_gets_an_approve(self) -> None:
        scenarios = [
            [request("r-1", [(x, "prod") for x in "abcd"])],
            [request("r-1", [("a", "prod"), ("b", "research")])],
            [request("r-1", [("a", "prod")]), request("r-1", [("b", "prod")], t=1,
                                                      event_id="e-2")],
            [event(raw_request("r-1", [("a", "prod")], reason=" "))],
        ]
        for events in scenarios:
            state = SubjectState()
            for item in events:
                state, verdicts = decide(state, item, item.at, POLICY)
            actions = [v.action for v in verdicts if v.request_id == "r-1"]
            assert actions == ["deny"], events
            if len(events) == 1:
                assert state.grants == ()


# ---------------------------------------------------------------- lifetime


class TestLifetime:
    def test_default_ttl(self) -> None:
        state, [verdict] = run([request("r-1", [("a", "prod")], t=7)])
        default = POLICY.defaults.ttl.default_s
        assert verdict.expires_at == at(7 + default)
        assert verdict.reason == f"no rule objects; granted for {default} s"
        assert state.grants[0].expires_at == at(7 + default)
        assert state.grants[0].granted_at == at(7)

    def test_requested_ttl_is_used(self) -> None:
        _, [verdict] = run([request("r-1", [("a", "prod")], ttl_s=90, t=1)])
        assert verdict.expires_at == at(91)

    def test_ttl_exactly_at_the_maximum_is_not_clamped(self) -> None:
        max_s = POLICY.defaults.ttl.max_s
        _, [verdict] = run([request("r-1", [("a", "prod")], ttl_s=max_s)])
        assert verdict.expires_at == at(max_s)
        assert "clamped" not in verdict.reason

    def test_ttl_over_the_maximum_is_clamped(self) -> None:
        max_s = POLICY.defaults.ttl.max_s
        _, [verdict] = run([request("r-1", [("a", "prod")], ttl_s=max_s + 1)])
        assert verdict.action == "approve"
        assert verdict.expires_at == at(max_s)
        assert verdict.reason == (f"no rule objects; granted for {max_s} s (requested "
                                  f"{max_s + 1} s, clamped to the maximum)")

    def test_ttl_settings_come_from_the_policy(self) -> None:
        policy = variant(POLICY, ttl={"default_s": 120, "max_s": 300})
        _, verdicts = run([request("r-1", [("a", "prod")]),
                           request("r-2", [("b", "prod")], ttl_s=1000)], policy=policy)
        assert [v.expires_at for v in verdicts] == [at(120), at(300)]

    def test_expiries_come_first_ordered_by_expiry_at_their_own_time(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "staging")], ttl_s=80),
            request("r-2", [("b", "staging")], ttl_s=20, t=1),
            request("r-3", [("c", "staging")], ttl_s=49, t=2),
            request("r-4", [("d", "staging")], t=100),
        ])
        assert [(v.action, v.rule.id, v.targets, v.at) for v in verdicts[3:]] == [
            ("revoke", "ttl-expired", ("r-2",), at(21)),
            ("revoke", "ttl-expired", ("r-3",), at(51)),
            ("revoke", "ttl-expired", ("r-1",), at(80)),
            ("approve", "auto-approve", (), at(100)),
        ]
        assert verdicts[3].reason == "grant r-2 reached its expiry at 2026-11-23T10:00:21Z"
        assert verdicts[3].resources == ("b",)
        assert live(state) == ["r-4"]

    def test_equal_expiries_keep_arrival_order(self) -> None:
        _, verdicts = run([
            request("r-z", [("a", "staging")], ttl_s=60),
            request("r-a", [("b", "staging")], ttl_s=60),
            request("r-n", [("c", "staging")], t=60),
        ])
        assert [v.targets for v in verdicts if v.action == "revoke"] == [("r-z",), ("r-a",)]

    def test_a_grant_ends_exactly_at_expires_at_not_before(self) -> None:
        start, _ = run([request("r-1", [("a", "prod")], ttl_s=60)])
        before = request("r-2", [("b", "prod")], t=59)
        still, made = decide(start, before, before.at, POLICY)
        assert live(still) == ["r-1", "r-2"]
        assert [v.action for v in made] == ["approve"]
        on_time = request("r-3", [("c", "prod")], t=60)
        ended, made = decide(start, on_time, on_time.at, POLICY)
        assert brief(made)[0] == ("revoke", "ttl-expired", "r-1", ("r-1",))
        assert live(ended) == ["r-3"]

    def test_an_expiry_frees_room_before_the_cap_is_counted(self) -> None:
        state, verdicts = run([
            request("r-0", [("x0", "prod")], ttl_s=30),
            *singles(CAP - 1, start=1),
            request("r-new", [("y", "prod")], t=40),
        ])
        assert [(v.action, v.rule.id) for v in verdicts[CAP:]] == [
            ("revoke", "ttl-expired"), ("approve", "auto-approve")]
        assert live(state) == [*(f"r-{n}" for n in range(1, CAP)), "r-new"]

    def test_an_expired_conflicting_grant_ends_by_expiry_not_conflict(self) -> None:
        _, verdicts = run([request("r-1", [("a", "research")], ttl_s=30),
                           request("r-2", [("b", "prod")], t=30)])
        assert brief(verdicts)[1:] == [("revoke", "ttl-expired", "r-1", ("r-1",)),
                                       ("approve", "auto-approve", "r-2", ())]

    def test_an_expired_request_id_is_free_again_in_the_same_event(self) -> None:
        state, verdicts = run([request("r-1", [("a", "prod")], ttl_s=30),
                               request("r-1", [("b", "prod")], t=31, event_id="e-again")])
        assert brief(verdicts)[1:] == [("revoke", "ttl-expired", "r-1", ("r-1",)),
                                       ("approve", "auto-approve", "r-1", ())]
        assert [r.id for r in state.grants[0].resources] == ["b"]

    @pytest.mark.parametrize("end", ["request.withdrawn", "task.completed"])
    def test_ending_an_already_expired_grant_reports_only_the_expiry(self, end: str) -> None:
        _, verdicts = run([request("r-1", [("a", "prod")], ttl_s=30),
                           event(raw_event(end, event_id="e-end", t=45, request_id="r-1"))])
        assert brief(verdicts)[1:] == [("revoke", "ttl-expired", "r-1", ("r-1",))]
        assert verdicts[1].at == at(30)

    @pytest.mark.parametrize(("end", "rule"), [("request.withdrawn", "request-withdrawn"),
                                               ("task.completed", "task-completed")])
    def test_withdrawal_and_completion_revoke_the_live_grant(self, end: str,
                                                             rule: str) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("b", "prod")], t=1),
            event(raw_event(end, event_id="e-end", t=5, request_id="r-1")),
            event(raw_event(end, event_id="e-none", t=6, request_id="r-unknown")),
        ])
        assert brief(verdicts)[2:] == [("revoke", rule, "r-1", ("r-1",))]
        assert verdicts[2].at == at(5)
        assert live(state) == ["r-2"]
        assert state.applied[-1] == "e-none"

    def test_expiries_of_different_kinds_come_oldest_first(self) -> None:
        high = {"id": "b", "env": "staging", "sensitivity": "high"}
        _, verdicts = run([
            request("r-1", [("a", "staging")], ttl_s=5000),
            event(raw_request("r-2", [high], t=1, ticket="OPS-1")),
            request("r-3", [("c", "staging")], t=6000),
        ])
        expiries = verdicts[2:4]
        assert [v.rule.id for v in expiries] == ["pending-expired", "ttl-expired"]
        assert [v.at for v in expiries] == sorted(v.at for v in expiries)


# ---------------------------------------------------------------- idempotence and purity


class TestIdempotence:
    def test_the_same_event_twice_changes_nothing(self) -> None:
        first = request("r-1", [("a", "prod")])
        state, _ = run([first])
        again, verdicts = decide(state, first, first.at, POLICY)
        assert verdicts == ()
        assert again is state

    def test_a_redelivered_denied_request_gives_no_second_deny(self) -> None:
        bad = request("r-1", [("a", "prod"), ("b", "research")])
        state, [deny] = run([bad])
        assert deny.action == "deny"
        again, verdicts = decide(state, bad, bad.at, POLICY)
        assert (again, verdicts) == (state, ())

    def test_a_redelivery_notices_no_expiry_either(self) -> None:
        first = request("r-1", [("a", "prod")], ttl_s=30)
        state, _ = run([first])
        again, verdicts = decide(state, first, at(1000), POLICY)
        assert verdicts == ()
        assert again is state

    def test_redelivery_with_another_time_or_payload_is_still_dropped(self) -> None:
        state, _ = run([request("r-1", [("a", "prod")])])
        changed = request("r-2", [("b", "research")], t=50, event_id="e-r-1")
        again, verdicts = decide(state, changed, changed.at, POLICY)
        assert (again, verdicts) == (state, ())

    def test_applied_window_is_bounded_and_keeps_the_newest(self) -> None:
        extra = 5
        events = [event(raw_event("session.ended", event_id=f"e-{n}", session_id="s", t=n))
                  for n in range(APPLIED_EVENT_MEMORY + extra)]
        state, _ = run(events)
        assert state.applied == tuple(f"e-{n}" for n in range(extra,
                                                                APPLIED_EVENT_MEMORY + extra))
        for item in events[extra:]:
            assert decide(state, item, item.at, POLICY)[0] is state
        forgotten = events[0]
        assert decide(state, forgotten, forgotten.at, POLICY)[0] is not state

    def test_the_window_holds_exactly_the_memory(self) -> None:
        events = [event(raw_event("session.ended", event_id=f"e-{n}", session_id="s", t=n))
                  for n in range(APPLIED_EVENT_MEMORY)]
        state, _ = run(events)
        assert len(state.applied) == APPLIED_EVENT_MEMORY
        assert state.applied[0] == "e-0"

    def test_a_clock_tick_is_not_remembered(self) -> None:
        state, _ = run([request("r-1", [("a", "prod")], ttl_s=30)])
        tick = ClockTick(event_id="tick:1", at=at(30), tenant="default",
                         subject=Subject(id="alice"))
        ended, verdicts = decide(state, tick, tick.at, POLICY)
        assert brief(verdicts) == [("revoke", "ttl-expired", "r-1", ("r-1",))]
        assert ended.applied == state.applied
        assert decide(ended, tick, tick.at, POLICY) == (ended, ())


class TestPurity:
    def test_input_state_is_never_mutated(self) -> None:
        state, _ = run([
            request("r-1", [("a", "research")], ttl_s=30),
            request("r-2", [("b", "staging")], t=1),
            request("r-3", [("c", "staging"), ("d", "staging")], t=2),
        ])
        snapshot = copy.deepcopy(state)
        for item in [request("r-4", [("e", "prod"), ("f", "prod")], t=40),
                     request("r-5", [(x, "prod") for x in "wxyz"], t=40),
                     event(raw_event("task.completed", event_id="e-t", t=40,
                                     request_id="r-2"))]:
            new_state, verdicts = decide(state, item, item.at, POLICY)
            assert verdicts
            assert new_state is not state
            assert state == snapshot

    def test_state_and_verdicts_are_frozen(self) -> None:
        state, [verdict] = run([request("r-1", [("a", "prod")])])
        with pytest.raises(dataclasses.FrozenInstanceError):
            state.grants = ()  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            state.grants[0].expires_at = T0  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            verdict.action = "deny"  # type: ignore[misc]

    def test_the_same_input_gives_the_same_output(self) -> None:
        events = [*singles(CAP), request("r-x", [("y", "research"), ("z", "staging")], t=9)]
        assert run(events) == run(events)


class TestSummaries:
    def test_every_verdict_shows_holdings_before_and_after(self) -> None:
        _, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("b", "staging"), ("a", "staging")], t=1),
            request("r-3", [("c", "research")], t=2),
        ])
        assert [(v.action, v.before, v.after) for v in verdicts] == [
            ("approve", summary(0, 0), summary(1, 1, "prod")),
            ("approve", summary(1, 1, "prod"), summary(2, 2, "prod", "staging")),
            ("approve", summary(2, 2, "prod", "staging"),
             summary(3, 3, "prod", "research", "staging")),
            ("revoke", summary(3, 3, "prod", "research", "staging"),
             summary(2, 3, "research", "staging")),
        ]

    def test_a_deny_shows_unchanged_holdings(self) -> None:
        _, verdicts = run([request("r-1", [("a", "prod")]),
                           request("r-2", [("b", "prod"), ("c", "research")], t=1)])
        assert verdicts[1].before == verdicts[1].after == summary(1, 1, "prod")

    def test_an_expiry_summary_counts_the_grants_still_live_then(self) -> None:
        _, verdicts = run([request("r-1", [("a", "prod")], ttl_s=10),
                           request("r-2", [("b", "staging")], ttl_s=20, t=1),
                           request("r-3", [("c", "dev")], t=30)])
        assert [(v.rule.id, v.before, v.after) for v in verdicts[2:]] == [
            ("ttl-expired", summary(2, 2, "prod", "staging"), summary(1, 1, "staging")),
            ("ttl-expired", summary(1, 1, "staging"), summary(0, 0)),
            ("auto-approve", summary(0, 0), summary(1, 1, "dev")),
        ]

