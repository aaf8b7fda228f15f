"""A request's life (policy/rules/lifecycle.py): id reuse, withdrawal, task completion."""

from __future__ import annotations

import dataclasses

import pytest

from policy import decide, next_deadline
from policy.decide import applied_mark
from schemas.events import ClockTick, Subject
from schemas.state import SubjectState
from tests.factories import at, event, raw_event, request
from tests.policy.rules.support import REVIEWED, policy, req
from tests.policy.rules.support import brief as brief_raw
from tests.policy.rules.support import run as run_raw
from tests.policy.support import (
    brief,
    live,
    run,
)


class TestRequestIds:
    def test_reusing_a_live_request_id_is_denied(self) -> None:
        before, _ = run([request("r-1", [("a", "prod")], ttl_s=600)])
        state, verdicts = run([request("r-1", [("b", "prod")], t=1, event_id="e-again")],
                              state=before)
        assert brief(verdicts) == [("deny", "request-id-reused", "r-1", ())]
        assert verdicts[0].reason == "request r-1 is already live or pending"
        assert state.grants == before.grants

    @pytest.mark.parametrize("end", ["request.withdrawn", "task.completed"])
    def test_an_ended_request_id_is_remembered(self, end: str) -> None:
        # Issue H: one id names one request for the retention, so a review signed for it or
        # a session on it never applies to a second request of that id.
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            event(raw_event(end, event_id="e-end", t=1, request_id="r-1")),
            request("r-1", [("b", "prod")], t=2, event_id="e-again"),
        ])
        assert brief(verdicts)[2] == ("deny", "request-id-remembered", "r-1", ())
        assert "use a new request id" in verdicts[2].reason
        assert state.grants == ()

    def test_the_id_is_forgotten_when_its_retention_ends_and_a_tick_cleans_up(self) -> None:
        active = policy("[defaults.limits]\nrequest_retention_s = 100\n")
        ended = raw_event("task.completed", event_id="e-end", t=1, request_id="r-1")
        state, _ = run_raw([req("r-1", ("a", "dev", "low")), ended], active)
        assert [mark.until for mark in state.requested] == [at(100)]
        assert next_deadline(state) == at(100)
        tick = ClockTick(event_id="tick", at=at(100), tenant="default",
                         subject=Subject(id="alice"))
        cleaned, made = decide(state, tick, at(100), active)
        # Nothing live or remembered: next is the day the rest is forgotten (the
        # break-glass window, longer than the retention here, from the last event).
        assert (made, cleaned.requested) == ((), ())
        assert next_deadline(cleaned) == cleaned.forget_at == at(1 + 86400)
        _, verdicts = run_raw([req("r-1", ("a", "dev", "low"), t=99, event_id="e-early"),
                               req("r-1", ("a", "dev", "low"), t=100, event_id="e-late")],
                              active, state)
        assert brief_raw(verdicts) == [("deny", "request-id-remembered", "r-1"),
                                       ("approve", "auto-approve", "r-1")]

    def test_a_quiet_subject_is_forgotten_whole_at_its_forget_at(self) -> None:
        """Issue H, bounds: rate history, seen pairs and a fixed kind do not keep a quiet
        subject stored for ever; a tick at forget_at with nothing live empties it."""
        packaged = policy()
        state, _ = run_raw([req("r-1", ("a", "dev", "low"), ttl_s=60),
                            req("r-2", ("b", "dev", "low"), ttl_s=60, t=5, event_id="e-2")],
                           packaged)
        assert state.kind_fixed
        assert state.recent_requests
        forget = state.forget_at
        assert forget == at(5 + 30 * 86400)  # the default retention, from the last event
        for moment in (at(60), at(65), state.requested[0].until):
            tick = ClockTick(event_id="tick", at=moment, tenant="default",
                             subject=Subject(id="alice"))
            state, _ = decide(state, tick, moment, packaged)
        assert state.forget_at == forget
        assert next_deadline(state) == forget
        tick = ClockTick(event_id="tick", at=forget, tenant="default",
                         subject=Subject(id="alice"))
        forgotten, verdicts = decide(state, tick, forget, packaged)
        assert (forgotten, verdicts) == (SubjectState(), ())

    def test_a_live_grant_keeps_the_subject_past_forget_at(self) -> None:
        packaged = policy()
        state, _ = run_raw([req("r-1", ("a", "dev", "low"))], packaged)
        assert state.forget_at is not None
        late = dataclasses.replace(state, forget_at=at(10))
        tick = ClockTick(event_id="tick", at=at(20), tenant="default",
                         subject=Subject(id="alice"))
        assert decide(late, tick, at(20), packaged) == (late, ())
        # The grant's next expiry notice (issue J) comes before its expiry.
        assert next_deadline(late) == late.grants[0].notice_at

    def test_a_denied_request_leaves_its_id_free(self) -> None:
        active = policy('[defaults.ttl]\nover_max = "deny"\n')
        state, verdicts = run_raw([req("r-1", ("a", "dev", "low"), ttl_s=10**6),
                                   req("r-1", ("a", "dev", "low"), t=1, ttl_s=60,
                                       event_id="e-again")], active)
        assert brief_raw(verdicts) == [("deny", "ttl-max", "r-1"),
                                       ("approve", "auto-approve", "r-1")]
        assert len(state.requested) == 1

    def test_a_full_memory_denies_rather_than_forgets(self) -> None:
        active = policy("[defaults.limits]\nmax_request_ids = 2\n")
        asked = [req(f"r-{n}", ("a", "dev", "low"), t=n, event_id=f"e-{n}")
                 for n in range(3)]
        ended = [raw_event("task.completed", event_id=f"e-end-{n}", t=n + 0.5,
                           request_id=f"r-{n}") for n in range(2)]
        state, verdicts = run_raw([asked[0], ended[0], asked[1], ended[1], asked[2]], active)
        assert brief_raw(verdicts)[-1] == ("deny", "state-limit", "r-2")
        assert "limits.max_request_ids" in verdicts[-1].reason
        assert len(state.requested) == 2


class TestEnds:
    @pytest.mark.parametrize(("end", "rule"), [("request.withdrawn", "request-withdrawn"),
                                               ("task.completed", "task-completed")])
    def test_withdrawal_and_completion_revoke_the_live_grant(self, end: str,
                                                             rule: str) -> None:
        nothing = event(raw_event(end, event_id="e-none", t=6, request_id="r-unknown"))
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("b", "prod")], t=1),
            event(raw_event(end, event_id="e-end", t=5, request_id="r-1")),
            nothing,
        ])
        assert brief(verdicts)[2:] == [("revoke", rule, "r-1", ("r-1",))]
        assert verdicts[2].at == at(5)
        assert live(state) == ["r-2"]
        assert state.applied[-1] == applied_mark(nothing)


def test_withdrawing_a_pending_request() -> None:
    state, verdicts = run_raw([req("r-1", ("db", "prod", "high"), ticket="OPS-1"),
                           raw_event("request.withdrawn", event_id="e-w", t=1,
                                     request_id="r-1")], policy(REVIEWED))
    assert brief_raw(verdicts)[-1] == ("deny", "request-withdrawn", "r-1")
    assert state.pending == ()
