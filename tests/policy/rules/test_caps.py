"""Rule caps (policy/rules/caps.py): the resource cap, per request and held at once."""

from __future__ import annotations

import pytest

from tests.factories import at, request, variant
from tests.policy.support import (
    CAP,
    POLICY,
    brief,
    held,
    live,
    run,
    singles,
)


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
