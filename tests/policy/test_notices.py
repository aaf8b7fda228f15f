"""Notices (issue J): expiry-soon before each grant's expiry, post-review due and overdue;
given once, at their own time, whichever tick or event finds them due."""

from __future__ import annotations

from typing import Any

from policy import decide_all, next_deadline
from schemas.events import ClockTick, Subject
from schemas.policy import Policy
from schemas.state import SubjectState
from tests.factories import at, event, raw_event
from tests.policy.rules.support import policy, req

NOTICES = policy("[defaults.notices]\nbefore_expiry_s = [600, 60]\n")


def _tick(seconds: float) -> ClockTick:
    return ClockTick(event_id=f"tick:{seconds}", at=at(seconds), tenant="default",
                     subject=Subject(id="alice"))


def _run(items: list[dict[str, Any] | float], active: Policy = NOTICES
         ) -> tuple[SubjectState, list[tuple[str, str, Any, Any]]]:
    """Raw events, or a float for a tick at that second; the notices given, as
    (kind, request_id, at, due_at)."""
    state, given = SubjectState(), []
    for item in items:
        made = _tick(item) if isinstance(item, float) else event(item)
        decided = decide_all(state, made, made.at, active)
        state = decided.state
        given += [(n.kind, n.request_id, n.at, n.due_at) for n in decided.notices]
    return state, given


class TestExpirySoon:
    def test_one_notice_per_moment_before_expiry_at_its_own_time(self) -> None:
        state, given = _run([req("r-1", ("a", "prod", "low"), ttl_s=3600)])
        assert given == []
        assert state.grants[0].notice_at == at(3000)
        assert next_deadline(state) == at(3000)
        state, given = _run([req("r-1", ("a", "prod", "low"), ttl_s=3600), 3000.0, 3540.0,
                             3540.0])
        assert given == [("expiry-soon", "r-1", at(3000), at(3600)),
                         ("expiry-soon", "r-1", at(3540), at(3600))]
        assert state.grants[0].notice_at is None
        assert next_deadline(state) == at(3600)

    def test_a_late_tick_gives_every_missed_notice_once_then_the_expiry(self) -> None:
        _, given = _run([req("r-1", ("a", "prod", "low"), ttl_s=3600), 4000.0])
        assert given == [("expiry-soon", "r-1", at(3000), at(3600)),
                         ("expiry-soon", "r-1", at(3540), at(3600))]

    def test_an_event_finds_the_same_notice_a_tick_would(self) -> None:
        grant = req("r-1", ("a", "prod", "low"), ttl_s=3600)
        later = req("r-2", ("b", "prod", "low"), t=3100, ttl_s=60)
        by_event = decide_all(_run([grant])[0], event(later), at(3100), NOTICES)
        by_tick = decide_all(_run([grant])[0], _tick(3100), at(3100), NOTICES)
        assert by_event.notices == by_tick.notices
        assert len(by_event.notices) == 1

    def test_a_grant_shorter_than_the_notice_gets_none_before_it(self) -> None:
        state, given = _run([req("r-1", ("a", "prod", "low"), ttl_s=300), 400.0])
        assert given == [("expiry-soon", "r-1", at(240), at(300))]
        assert state.grants == ()

    def test_an_extension_moves_the_notice_with_the_expiry(self) -> None:
        extension = raw_event("request.extension_requested", t=1000, event_id="x-1",
                              request_id="r-1", ttl_s=1800, reason="job still running")
        state, given = _run([req("r-1", ("a", "prod", "low"), ttl_s=3600), extension])
        assert state.grants[0].expires_at == at(5400)
        assert state.grants[0].notice_at == at(4800)
        _, given = _run([req("r-1", ("a", "prod", "low"), ttl_s=3600), extension, 3000.0,
                         4800.0])
        assert given == [("expiry-soon", "r-1", at(4800), at(5400))]

    def test_no_notice_without_before_expiry_s(self) -> None:
        quiet = policy("[defaults.notices]\nbefore_expiry_s = []\n")
        state, given = _run([req("r-1", ("a", "prod", "low"), ttl_s=3600), 4000.0], quiet)
        assert given == []
        assert state.grants == ()


class TestPostReview:
    def test_due_when_granted_and_overdue_at_its_due_time(self) -> None:
        glass = req("r-9", ("a", "prod", "low"), break_glass=True, ttl_s=600)
        quiet = policy("[defaults.notices]\nbefore_expiry_s = []\n"
                       "[defaults.break_glass]\nreview_within_s = 7200\n")
        _, given = _run([glass, 7200.0, 9000.0], quiet)
        assert given == [("post-review-due", "r-9", at(0), at(7200)),
                         ("post-review-overdue", "r-9", at(7200), at(7200))]
