"""The request.created handler (policy/handlers/request.py): what a new grant displaces."""

from __future__ import annotations

from tests.factories import at, request
from tests.policy.support import (
    brief,
    live,
    run,
)


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
