"""Session events (policy/handlers/sessions.py) and the memory of ended grants (issue H,
finding 12): a due lock is never dropped, and the grace is only for a grant not seen yet."""

from __future__ import annotations

from typing import Any

from policy import ENDED_GRANT_MEMORY, Verdict, decide, ended_mark
from schemas.events import InputEvent
from schemas.state import Session, StoredSubject, SubjectState
from streams.engine.codec import decode_stored, encode_stored
from tests.factories import at, event, raw_event, request
from tests.policy.support import POLICY, brief, run


def _session(kind: str, session_id: str, t: float, **fields: Any) -> InputEvent:
    return event(raw_event(f"session.{kind}", t=t, event_id=f"e-{kind}-{session_id}-{t}",
                           session_id=session_id, **fields))


def _completed(request_id: str, t: float) -> InputEvent:
    return event(raw_event("task.completed", t=t, event_id=f"e-done-{request_id}-{t}",
                           request_id=request_id))


def test_a_grant_that_ends_is_remembered_as_ended() -> None:
    state, _ = run([request("r-1", [("db/a", "staging")]), _completed("r-1", 5)])
    assert state.ended == (ended_mark("r-1"),)
    assert len(ended_mark("r-" + "x" * 126)) == len(ended_mark("r-1")), "fixed size"


def test_the_memory_of_ended_grants_keeps_the_newest_only() -> None:
    events: list[InputEvent] = []
    for number in range(ENDED_GRANT_MEMORY + 3):
        events += [request(f"r-{number}", [("db/a", "staging")], t=number * 200),
                   _completed(f"r-{number}", number * 200 + 1)]
    state, _ = run(events)
    assert len(state.ended) == ENDED_GRANT_MEMORY
    assert state.ended[-1] == ended_mark(f"r-{ENDED_GRANT_MEMORY + 2}")
    assert ended_mark("r-0") not in state.ended


def test_a_forgotten_ended_grant_is_treated_as_not_seen_yet() -> None:
    """Past the bound a session on the oldest ended id waits its grace like a session on
    an id never seen, and locks when that ends: later, never less closed."""
    events: list[InputEvent] = []
    for number in range(ENDED_GRANT_MEMORY + 1):
        events += [request(f"r-{number}", [("db/a", "staging")], t=number * 200),
                   _completed(f"r-{number}", number * 200 + 1)]
    late = (ENDED_GRANT_MEMORY + 1) * 200
    state, verdicts = run([*events, _session("started", "s-1", late, request_id="r-0",
                                             resource="db/a")])
    assert [s.held_until for s in state.sessions] == [at(late + 30)]
    _, verdicts = run([request("r-x", [("db/b", "staging")], t=late + 31)], state=state)
    assert brief(verdicts)[0] == ("lock", "session-without-grant", "r-0", ())


def test_activity_on_the_awaited_resource_waits_for_the_grant() -> None:
    # The session overtakes (is decided before) a grant made at the same time.
    state, verdicts = run([
        _session("started", "s-1", 2, request_id="r-1", resource="db/a"),
        _session("activity", "s-1", 2, resource="db/a", action="SELECT"),
        request("r-1", [("db/a", "staging")], t=2),
    ])
    assert brief(verdicts) == [("approve", "auto-approve", "r-1", ())]
    assert [s.held_until for s in state.sessions] == [None], "settled when the grant came"


def test_a_grant_that_arrives_without_the_awaited_resource_locks_at_once() -> None:
    _, verdicts = run([
        _session("started", "s-1", 0, request_id="r-1", resource="db/secrets"),
        request("r-1", [("db/a", "staging")], t=2),
    ])
    assert brief(verdicts) == [("approve", "auto-approve", "r-1", ()),
                               ("lock", "session-out-of-scope", "r-1", ("r-1",))]
    assert verdicts[1].at == at(2)


def test_a_session_on_a_revoked_grant_locks_at_once() -> None:
    withdrawn = event(raw_event("request.withdrawn", t=5, event_id="e-w", request_id="r-1"))
    state, verdicts = run([
        request("r-1", [("db/a", "staging")]), withdrawn,
        _session("started", "s-1", 6, request_id="r-1", resource="db/a"),
    ])
    assert brief(verdicts)[-1] == ("lock", "session-without-grant", "r-1", ())
    assert verdicts[-1].at == at(6)
    assert state.sessions == ()


def test_state_stored_before_the_ended_memory_still_decodes() -> None:
    old = (b'{"v":1,"tenants":{"default":{"grants":[],"applied":["e-1"],'
           b'"sessions":[{"session_id":"s-1","request_id":"r-9","resource":"db/a",'
           b'"started_at":"2026-11-23T10:00:00Z","held_until":"2026-11-23T10:00:30Z"}]}}}')
    stored = decode_stored(old)
    assert stored is not None
    state = stored.tenants["default"]
    assert state.ended == ()
    assert state.sessions == (Session("s-1", "r-9", "db/a", at(0), at(30)),)
    assert b"ended" not in encode_stored(stored), "an empty memory is not written"
    again = StoredSubject(tenants={"default": SubjectState(ended=(ended_mark("r-1"),))})
    decoded = decode_stored(encode_stored(again))
    assert decoded is not None
    assert decoded.tenants["default"].ended == (ended_mark("r-1"),)


# A grant made after a session event never covers it (issue H, one order for stream and
# replay): the stream may decide a session event after a later request of its subject, at
# the subject's later clock, but it is judged as of its own (broker) time.


def _at_broker(events: list[tuple[InputEvent, float]], state: SubjectState | None = None,
               ) -> tuple[SubjectState, list[Verdict]]:
    """Decide ``events`` in the order given, each received by the broker at its second."""
    state = state or SubjectState()
    verdicts: list[Verdict] = []
    for item, received in events:
        state, made = decide(state, item, at(received), POLICY, received=at(received))
        verdicts += made
    return state, verdicts


def test_a_grant_made_after_the_activity_does_not_cover_it() -> None:
    state, _ = _at_broker([(request("r-1", [("db/a", "staging")]), 0),
                           (request("r-2", [("db/secrets", "staging")], t=6), 6)])
    assert [g.granted_at for g in state.grants] == [at(0), at(6)]
    # Received at 5, decided after the request received at 6: at the subject's clock (6),
    # but r-2's grant did not exist yet when the activity happened.
    state, verdicts = _at_broker([(_session("activity", "s-1", 5, resource="db/secrets",
                                            action="COPY"), 5)], state)
    assert brief(verdicts) == [("lock", "session-out-of-scope", None, ("r-1", "r-2"))]
    assert verdicts[0].at == at(6), "decided and locked at the clamped time"
    assert state.grants == ()


def test_a_grant_made_before_the_activity_still_covers_it_when_decided_late() -> None:
    state, _ = _at_broker([(request("r-1", [("db/a", "staging")]), 0),
                           (request("r-2", [("db/b", "staging")], t=6), 6)])
    _, verdicts = _at_broker([(_session("activity", "s-1", 5, resource="db/a",
                                        action="SELECT"), 5)], state)
    assert verdicts == []


def test_a_session_started_before_its_grant_was_made_locks() -> None:
    state, _ = _at_broker([(request("r-2", [("db/secrets", "staging")], t=6), 6)])
    state, verdicts = _at_broker([(_session("started", "s-1", 5, request_id="r-2",
                                            resource="db/secrets"), 5)], state)
    assert brief(verdicts) == [("lock", "session-without-grant", "r-2", ("r-2",))]
    assert verdicts[0].at == at(6)
    assert state.sessions == ()


def test_a_held_session_is_not_settled_by_a_grant_made_after_it_began() -> None:
    """An honest gateway opens a session only once it saw the approval, so a session
    whose own time is before its grant's was opened without one."""
    _, verdicts = run([
        _session("started", "s-1", 0, request_id="r-1", resource="db/a"),
        request("r-1", [("db/a", "staging")], t=2),
    ])
    assert brief(verdicts) == [("approve", "auto-approve", "r-1", ()),
                               ("lock", "session-without-grant", "r-1", ("r-1",))]
    assert verdicts[1].at == at(2)
    assert "made later" in verdicts[1].reason
