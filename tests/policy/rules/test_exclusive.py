"""Rule exclusive-environments (policy/rules/exclusive.py)."""

from __future__ import annotations

import pytest

from tests.factories import at, request
from tests.policy.support import (
    brief,
    live,
    run,
)


class TestExclusiveEnvironments:
    @pytest.mark.parametrize("pair", [[("db", "prod"), ("nb", "research")],
                                      [("nb", "research"), ("ci", "staging"), ("db", "prod")],
                                      [("same", "prod"), ("same", "research")]])
    def test_one_request_spanning_both_is_denied(self, pair: list[tuple[str, str]]) -> None:
        state, verdicts = run([request("r-1", pair)])
        # One id claimed in two envs is first a contradiction in itself (issue H).
        rule = "resource-mismatch" if pair[0][0] == pair[1][0] else "exclusive-environments"
        assert brief(verdicts) == [("deny", rule, "r-1", ())]
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
