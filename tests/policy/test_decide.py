"""decide() (policy/decide.py): redeliveries, purity."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from policy import APPLIED_EVENT_MEMORY, decide
from policy.decide import applied_mark
from schemas.events import ClockTick, Subject
from tests.factories import T0, at, event, raw_event, request
from tests.policy.support import (
    CAP,
    POLICY,
    brief,
    run,
    singles,
)


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

    def test_an_applied_id_with_other_contents_is_another_event(self) -> None:
        """Ids are claims (issue H): an event that only shares an applied event's id is
        decided, so a guessed id taken first cannot suppress the real event."""
        state, _ = run([request("r-1", [("a", "prod")])])
        changed = request("r-2", [("b", "staging")], t=50, event_id="e-r-1")
        again, verdicts = decide(state, changed, changed.at, POLICY)
        assert brief(verdicts) == [("approve", "auto-approve", "r-2", ())]
        assert again.applied[-1] == applied_mark(changed)
        assert decide(again, changed, changed.at, POLICY) == (again, ())  # the same again

    def test_a_plain_id_stored_before_marks_still_drops_its_redelivery(self) -> None:
        state, _ = run([request("r-1", [("a", "prod")])])
        legacy = dataclasses.replace(state, applied=("e-r-1",))
        item = request("r-1", [("a", "prod")])
        assert decide(legacy, item, item.at, POLICY) == (legacy, ())

    def test_applied_window_is_bounded_and_keeps_the_newest(self) -> None:
        extra = 5
        events = [event(raw_event("session.ended", event_id=f"e-{n}", session_id="s", t=n))
                  for n in range(APPLIED_EVENT_MEMORY + extra)]
        state, _ = run(events)
        assert state.applied == tuple(applied_mark(item) for item in events[extra:])
        for item in events[extra:]:
            assert decide(state, item, item.at, POLICY)[0] is state
        forgotten = events[0]
        assert decide(state, forgotten, forgotten.at, POLICY)[0] is not state

    def test_the_window_holds_exactly_the_memory(self) -> None:
        events = [event(raw_event("session.ended", event_id=f"e-{n}", session_id="s", t=n))
                  for n in range(APPLIED_EVENT_MEMORY)]
        state, _ = run(events)
        assert len(state.applied) == APPLIED_EVENT_MEMORY
        assert state.applied[0] == applied_mark(events[0])

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
