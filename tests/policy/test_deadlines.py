"""Expiry (policy/deadlines.py): what runs out ends first, oldest first, in its own time."""

from __future__ import annotations

import pytest

from policy import decide
from tests.factories import at, event, raw_event, raw_request, request
from tests.policy.rules.support import policy
from tests.policy.support import (
    CAP,
    POLICY,
    brief,
    live,
    run,
    singles,
)


class TestExpiry:
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
        # Request ids not remembered (limits.request_retention_s 0): the expiry comes first,
        # so the id is neither live nor pending when the request is decided.
        forgetful = policy("[defaults.limits]\nrequest_retention_s = 0\n")
        state, verdicts = run([request("r-1", [("a", "prod")], ttl_s=30),
                               request("r-1", [("b", "prod")], t=31, event_id="e-again")],
                              forgetful)
        assert brief(verdicts)[1:] == [("revoke", "ttl-expired", "r-1", ("r-1",)),
                                       ("approve", "auto-approve", "r-1", ())]
        assert [r.id for r in state.grants[0].resources] == ["b"]

    @pytest.mark.parametrize("end", ["request.withdrawn", "task.completed"])
    def test_ending_an_already_expired_grant_reports_only_the_expiry(self, end: str) -> None:
        _, verdicts = run([request("r-1", [("a", "prod")], ttl_s=30),
                           event(raw_event(end, event_id="e-end", t=45, request_id="r-1"))])
        assert brief(verdicts)[1:] == [("revoke", "ttl-expired", "r-1", ("r-1",))]
        assert verdicts[1].at == at(30)

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


def test_what_an_earlier_expiry_ended_is_not_ended_again() -> None:
    """Issue I (the 100,000-event fault runs): an event decided after several deadlines
    with no tick in between (the stream's tick still held) ends them in one go. A held
    session that runs out locks the subject, which ends its grants; the grant's own expiry,
    later in the same go, found it gone (ValueError: list.remove, an evaluation error
    instead of the lock and its end). The outcome is the one ticks at every deadline give."""
    session = event(raw_event("session.started", t=10, event_id="e-s-1", session_id="s-1",
                              request_id="r-x", resource="db/b"))
    events = [request("r-1", [("db/a", "staging")], ttl_s=60), session]
    late = request("r-2", [("db/c", "staging")], t=100)
    state, _ = run(events)
    assert [s.held_until for s in state.sessions] == [at(40)]
    _, at_once = run([late], state=state)
    ticked, _ = run([request("r-t1", [("db/d", "staging")], t=45)], state=state)
    assert brief(at_once)[0] == ("lock", "session-without-grant", "r-x", ("r-1",))
    assert [v.rule.id for v in at_once] == ["session-without-grant", "subject-locked"]
    assert all(v.rule.id != "evaluation-error" for v in at_once)
    assert live(ticked) == []
