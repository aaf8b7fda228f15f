"""Issue J properties, over random sequences of requests, extensions and time passing:
no grant's whole life exceeds ``ttl.max_total_s``; no break-glass is granted while one of
the subject's post-reviews is overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policy import decide
from schemas.events import INPUT_EVENT, ClockTick, Subject
from schemas.policy import parse_policy
from schemas.state import SubjectState

POLICY = parse_policy("""
version = "lifecycle-properties"
[defaults.ttl]
max_extensions = 5
max_total_s = { low = 3000, medium = 7200 }
[defaults.justification]
reason_from = "never"
ticket_from = "never"
[defaults.break_glass]
max_per_window = 10
review_within_s = 1800
""").policy
START = datetime(2026, 11, 23, 10, tzinfo=UTC)
SUBJECT = {"id": "dev@example.com"}

steps = st.lists(st.tuples(
    st.sampled_from(["request", "extend", "glass", "wait"]),
    st.integers(0, 3),  # which request id
    st.sampled_from(["low", "medium"]),
    st.integers(60, 4000),  # seconds: ttl, extension or time passing
), min_size=1, max_size=30)


def _event(kind: str, n: int, number: int, sensitivity: str, seconds: int,
           at: datetime) -> Any:
    base = {"event_id": f"e-{number}", "at": at.isoformat(), "tenant": "default",
            "subject": SUBJECT, "request_id": f"r-{n}"}
    if kind == "extend":
        return INPUT_EVENT.validate_python({**base, "type": "request.extension_requested",
                                            "ttl_s": seconds})
    return INPUT_EVENT.validate_python({
        **base, "type": "request.created", "ttl_s": seconds, "break_glass": kind == "glass",
        "resources": [{"id": f"db/{n}", "env": "dev", "sensitivity": sensitivity}]})


@settings(max_examples=200, deadline=None)
@given(steps)
def test_no_grant_outlives_max_total_and_no_break_glass_while_overdue(
        plan: list[tuple[str, int, str, int]]) -> None:
    state, now = SubjectState(), START
    bound = {sensitivity: timedelta(seconds=POLICY.defaults.ttl.total_s(sensitivity))
             for sensitivity in ("low", "medium")}
    for number, (kind, n, sensitivity, seconds) in enumerate(plan):
        if kind == "wait":
            now += timedelta(seconds=seconds)
            tick = ClockTick(event_id=f"tick-{number}", at=now, tenant="default",
                             subject=Subject(id=SUBJECT["id"]))
            state, _ = decide(state, tick, now, POLICY)
            continue
        now += timedelta(seconds=1)
        overdue = any(item.deadline is None for item in state.obligations)
        state, verdicts = decide(state, _event(kind, n, number, sensitivity, seconds, now),
                                 now, POLICY)
        if overdue:
            assert not any(v.rule.id == "break-glass" and v.action == "approve"
                           for v in verdicts), "break-glass while a post-review is overdue"
        for grant in state.grants:
            top = max((r.sensitivity for r in grant.resources), key=["low", "medium"].index)
            assert grant.expires_at - grant.granted_at <= bound[top], "past ttl.max_total_s"
