"""The pure core's two seed rules, their boundaries and combinations (issue A)."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

import pytest

from policy.core import APPLIED_EVENT_MEMORY, Verdict, decide
from schemas.events import InputEvent
from schemas.policy import ExclusiveGroup, Policy, parse_policy
from schemas.state import SubjectState
from tests.factories import at, event, raw_event, request, variant

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text()).policy


def run(events: Iterable[InputEvent], policy: Policy = POLICY,
        state: SubjectState | None = None) -> tuple[SubjectState, list[Verdict]]:
    """Apply events in order at their own time; return the final state and all verdicts."""
    state = state or SubjectState()
    verdicts: list[Verdict] = []
    for item in events:
        state, made = decide(state, item, item.at, policy)
        verdicts.extend(made)
    return state, verdicts


def brief(verdicts: Iterable[Verdict]) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    return [(v.action, v.rule.id, v.request_id, v.targets) for v in verdicts]


def live(state: SubjectState) -> list[str]:
    return [grant.request_id for grant in state.grants]


class TestResourceCap:
    def test_exactly_at_the_cap_is_approved_without_revoking(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("b", "prod"), ("c", "prod")], t=1),
        ])
        assert [v.action for v in verdicts] == ["approve", "approve"]
        assert live(state) == ["r-1", "r-2"]
        assert verdicts[-1].after.active_resources == 3

    def test_one_over_the_cap_revokes_the_oldest(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("b", "prod")], t=1),
            request("r-3", [("c", "prod")], t=2),
            request("r-4", [("d", "prod")], t=3),
        ])
        assert brief(verdicts)[-1] == ("revoke", "max-active-resources", "r-1", ("r-1",))
        assert live(state) == ["r-2", "r-3", "r-4"]
        assert verdicts[-1].reason == (
            "subject holds 4 resources, limit is 3: oldest grant r-1 revoked")
        assert (verdicts[-1].before.active_resources, verdicts[-1].after.active_resources) \
            == (4, 3)

    def test_multi_resource_oldest_frees_several_and_only_it_is_revoked(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod"), ("b", "prod")]),
            request("r-2", [("c", "prod")], t=1),
            request("r-3", [("d", "prod"), ("e", "prod")], t=2),
        ])
        [revoke] = [v for v in verdicts if v.action == "revoke"]
        assert revoke.targets == ("r-1",)
        assert (revoke.before.active_resources, revoke.after.active_resources) == (5, 3)
        assert live(state) == ["r-2", "r-3"]

    def test_as_many_oldest_grants_as_needed_are_revoked(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("b", "prod")], t=1),
            request("r-3", [("c", "prod")], t=2),
            request("r-4", [("d", "prod"), ("e", "prod")], t=3),
        ])
        assert [v.targets for v in verdicts if v.action == "revoke"] == [("r-1",), ("r-2",)]
        assert live(state) == ["r-3", "r-4"]

    def test_ties_in_time_revoke_the_earlier_arrival_first(self) -> None:
        state, verdicts = run([
            request("r-b", [("a", "prod")], t=5),
            request("r-a", [("b", "prod")], t=5),
            request("r-c", [("c", "prod")], t=5),
            request("r-d", [("d", "prod")], t=6),
        ])
        assert [v.targets for v in verdicts if v.action == "revoke"] == [("r-b",)]
        assert live(state) == ["r-a", "r-c", "r-d"]

    def test_a_resource_held_twice_counts_once(self) -> None:
        _state, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("a", "prod"), ("b", "prod")], t=1),
            request("r-3", [("c", "prod")], t=2),
        ])
        assert all(v.action == "approve" for v in verdicts)
        assert verdicts[-1].after.active_resources == 3

    def test_single_request_over_the_cap_is_denied(self) -> None:
        state, verdicts = run([request("r-1", [(x, "prod") for x in "abcd"])])
        assert brief(verdicts) == [("deny", "max-active-resources", "r-1", ())]
        assert verdicts[0].reason == "request asks for 4 resources, limit is 3"
        assert state.grants == ()

    def test_duplicate_ids_within_one_request_count_once(self) -> None:
        _, verdicts = run([request("r-1", [("a", "prod"), ("a", "prod"), ("b", "prod"),
                                           ("c", "prod")])])
        assert verdicts[0].action == "approve"

    def test_a_cap_of_one(self) -> None:
        policy = variant(POLICY, caps={"max_active_resources": 1})
        state, verdicts = run([request("r-1", [("a", "prod")]),
                               request("r-2", [("b", "prod")], t=1)], policy=policy)
        assert brief(verdicts)[-1] == ("revoke", "max-active-resources", "r-1", ("r-1",))
        assert live(state) == ["r-2"]


class TestExclusiveEnvironments:
    def test_one_request_spanning_both_is_denied(self) -> None:
        state, verdicts = run([request("r-1", [("db", "prod"), ("nb", "research")])])
        assert brief(verdicts) == [("deny", "exclusive-environments", "r-1", ())]
        assert "prod and research" in verdicts[0].reason
        assert state.grants == ()

    def test_new_grant_revokes_older_grants_in_the_other_env_only(self) -> None:
        state, verdicts = run([
            request("r-1", [("db", "prod")]),
            request("r-2", [("ci", "staging")], t=1),
            request("r-3", [("nb", "research")], t=2),
        ])
        assert brief(verdicts)[-2:] == [
            ("approve", "auto-approve", "r-3", ()),
            ("revoke", "exclusive-environments", "r-1", ("r-1",)),
        ]
        assert live(state) == ["r-2", "r-3"]

    def test_every_older_conflicting_grant_is_revoked(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "research")]),
            request("r-2", [("b", "research"), ("c", "staging")], t=1),
            request("r-3", [("d", "prod")], t=2),
        ])
        assert [v.targets for v in verdicts if v.action == "revoke"] == [("r-1",), ("r-2",)]
        assert live(state) == ["r-3"]

    def test_conflict_and_cap_in_one_event(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "staging"), ("b", "staging")]),
            request("r-2", [("c", "research")], t=1),
            request("r-3", [("d", "prod"), ("e", "prod")], t=2),
        ])
        assert brief(verdicts)[-3:] == [
            ("approve", "auto-approve", "r-3", ()),
            ("revoke", "exclusive-environments", "r-2", ("r-2",)),
            ("revoke", "max-active-resources", "r-1", ("r-1",)),
        ]
        assert live(state) == ["r-3"]

    def test_configured_groups(self) -> None:
        policy = variant(POLICY, exclusive=(ExclusiveGroup(name="pci", envs=("dev", "pci")),))
        _, verdicts = run([request("r-1", [("db", "prod"), ("nb", "research")]),
                           request("r-2", [("x", "dev"), ("y", "pci")], t=1)], policy=policy)
        assert [v.action for v in verdicts] == ["approve", "deny"]


class TestDenyWins:
    def test_several_objections_name_the_first_and_list_the_rest(self) -> None:
        _, verdicts = run([request("r-1", [("a", "prod"), ("b", "prod"), ("c", "research"),
                                           ("d", "prod")])])
        [verdict] = verdicts
        assert (verdict.action, verdict.rule.id) == ("deny", "max-active-resources")
        assert "; also: " in verdict.reason
        assert "request spans mutually exclusive prod and research" in verdict.reason

    def test_reused_live_request_id_is_denied(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-1", [("b", "prod")], t=1, event_id="e-again"),
        ])
        assert brief(verdicts)[-1] == ("deny", "request-id-reused", "r-1", ())
        assert [r.id for r in state.grants[0].resources] == ["a"]

    def test_review_with_nothing_pending_is_denied(self) -> None:
        _, verdicts = run([event(raw_event("request.reviewed", event_id="e-rev",
                                           request_id="r-9", reviewer={"id": "bob"},
                                           outcome="approved"))])
        assert brief(verdicts) == [("deny", "review-not-pending", "r-9", ())]


class TestLifetime:
    def test_default_ttl_and_clamp(self) -> None:
        _, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("b", "prod")], ttl_s=10 * 3600),
        ])
        assert verdicts[0].expires_at == at(3600)
        assert verdicts[1].expires_at == at(8 * 3600)
        assert "clamped to the maximum" in verdicts[1].reason

    def test_expiry_is_revoked_first_at_the_expiry_time(self) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")], ttl_s=60),
            request("r-2", [("b", "prod")], ttl_s=30, t=1),
            request("r-3", [("c", "prod")], t=100),
        ])
        assert brief(verdicts)[2:] == [
            ("revoke", "ttl-expired", "r-2", ("r-2",)),
            ("revoke", "ttl-expired", "r-1", ("r-1",)),
            ("approve", "auto-approve", "r-3", ()),
        ]
        assert [v.at for v in verdicts[2:4]] == [at(31), at(60)]
        assert live(state) == ["r-3"]

    def test_expiry_exactly_at_now(self) -> None:
        _state, verdicts = run([request("r-1", [("a", "prod")], ttl_s=60),
                               request("r-2", [("b", "prod")], t=60)])
        assert verdicts[1].rule.id == "ttl-expired"

    @pytest.mark.parametrize(("kind", "rule"), [("request.withdrawn", "request-withdrawn"),
                                                ("task.completed", "task-completed")])
    def test_withdrawal_and_task_completion_end_the_grant(self, kind: str, rule: str) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            event(raw_event(kind, event_id="e-end", t=5, request_id="r-1")),
            event(raw_event(kind, event_id="e-end-2", t=6, request_id="r-unknown")),
        ])
        assert brief(verdicts)[1:] == [("revoke", rule, "r-1", ("r-1",))]
        assert state.grants == ()


class TestIdempotence:
    def test_redelivered_event_changes_nothing(self) -> None:
        first = request("r-1", [("a", "prod")])
        state, _ = run([first])
        again, verdicts = decide(state, first, first.at, POLICY)
        assert verdicts == ()
        assert again is state

    def test_applied_window_is_bounded(self) -> None:
        events = [event(raw_event("session.ended", event_id=f"e-{n}", session_id="s", t=n))
                  for n in range(APPLIED_EVENT_MEMORY + 10)]
        state, _ = run(events)
        assert len(state.applied) == APPLIED_EVENT_MEMORY
        assert state.applied[-1] == events[-1].event_id

    def test_input_state_is_not_mutated(self) -> None:
        state, _ = run([request("r-1", [("a", "prod")]), request("r-2", [("b", "prod")], t=1)])
        snapshot = (state.grants, state.applied)
        run([request("r-3", [(x, "prod") for x in "cde"], t=2)], state=state)
        assert (state.grants, state.applied) == snapshot


def test_every_verdict_carries_state_before_and_after() -> None:
    _, verdicts = run([
        request("r-1", [("a", "prod")]),
        request("r-2", [("b", "research")], t=1),
    ])
    approve, revoke = verdicts[1], verdicts[2]
    assert (approve.before.active_grants, approve.after.active_grants) == (1, 2)
    assert approve.after.envs == ("prod", "research")
    assert (revoke.before.envs, revoke.after.envs) == (("prod", "research"), ("research",))


def test_evaluation_errors_are_denials_not_exceptions() -> None:
    broken = variant(POLICY, ttl={"max_s": "not a number"})
    state, verdicts = run([request("r-1", [("a", "prod")])], policy=broken)
    assert brief(verdicts) == [("deny", "evaluation-error", "r-1", ())]
    assert state.grants == ()
    assert state.applied == ("e-r-1",)
