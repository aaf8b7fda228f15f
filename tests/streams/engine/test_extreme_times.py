"""Times at the ends of what a datetime holds (years 1 and 9999): the tick/expiry path
denies or dead-letters like every other path, and a replay never raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import step
from schemas.decisions import Cause, Decision
from schemas.policy import parse_policy
from streams.engine.codec import decode_command, encode_stored, encode_tick
from streams.engine.deadlines import DeadlineIndex
from streams.engine.plan import Record, plan_batch, stored_keys
from streams.engine.replay import BadLine, Replay, UndecidedTick, replay_lines
from streams.engine.topics import InputTopics
from tests.factories import event

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
INPUT_TOPICS = InputTopics(requests="jit.requests", sessions="jit.sessions")
LAST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
FIRST = datetime(1, 1, 1, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _session(moment: datetime, number: int = 1) -> dict[str, Any]:
    # A session with no grant behind it is held sessions.grace_s, then locks the subject
    # for locks.default_s: near the end of time that lock ends past year 9999.
    return {"type": "session.started", "event_id": f"e-s{number}", "at": _stamp(moment),
            "subject": {"id": "alice"}, "session_id": f"s-{number}", "request_id": "r-1",
            "resource": "db/a"}


def _replay(raws: list[dict[str, Any]], until: datetime | None = None
            ) -> list[Decision | BadLine | UndecidedTick]:
    return list(replay_lines([orjson.dumps(raw) for raw in raws], POLICY, Replay(), 65536,
                             until))


def test_a_tick_that_cannot_be_decided_is_reported_not_raised() -> None:
    items = _replay([_session(LAST - timedelta(minutes=1))], until=LAST)
    undecided = [item for item in items if isinstance(item, UndecidedTick)]
    assert len(undecided) == 1
    assert undecided[0].error_class == "tick-undecidable"
    assert "alice" in undecided[0].message
    assert "OverflowError" in undecided[0].message


def test_a_later_event_after_an_undecidable_tick_is_reported_too() -> None:
    start = LAST - timedelta(minutes=1)
    items = _replay([_session(start), _session(LAST, number=2)])
    assert any(isinstance(item, UndecidedTick) for item in items)
    decisions = [item for item in items if isinstance(item, Decision)]
    assert all(decision.action != "approve" for decision in decisions)


def test_the_stream_dead_letters_an_undecidable_tick_command() -> None:
    started = step(None, event(_session(LAST - timedelta(minutes=1))), POLICY,
                   Cause(event_id="e-s1", type="session.started"))
    tick = Record("jitwatch-commands", 0, 7, b"alice", encode_tick(LAST, b"alice", "default"))
    plan = plan_batch([tick], {where: encode_stored(started.stored)
                               for where in stored_keys([tick])}, POLICY,
                      input_topics=INPUT_TOPICS, decisions_topic="jit.decisions",
                      deadletter_topic="jit.deadletter",
                      max_event_bytes=65536, now=lambda: LAST,
                      commands_topic="jitwatch-commands")
    assert plan.decisions == 0
    assert plan.dead_letters == 1
    headers = dict(plan.outbound[0].headers)
    assert plan.outbound[0].topic == "jit.deadletter"
    assert headers["error.class"] == b"tick-undecidable"
    assert b"alice" in headers["error.message"]
    assert not plan.writes  # nothing ended, so nothing new to store


def test_ticks_and_the_deadline_index_hold_the_extreme_times() -> None:
    for moment in (FIRST, LAST):
        assert decode_command(b"alice", encode_tick(moment, b"alice", "default")).at == moment
    index = DeadlineIndex()
    index.set(b"alice", "default", LAST)
    index.set(b"bob", "default", FIRST)
    assert index.due(LAST) == [(FIRST, b"bob", "default"), (LAST, b"alice", "default")]


MOMENTS = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                 timezones=st.just(UTC)),
    st.integers(0, 3 * 3600).map(lambda s: LAST - timedelta(seconds=s)),
    st.integers(0, 3 * 3600).map(lambda s: FIRST + timedelta(seconds=s)),
)
KINDS = st.sampled_from(["request", "break-glass", "session", "activity", "review",
                         "withdrawn", "release"])


def _raw(kind: str, moment: datetime, number: int) -> dict[str, Any]:
    base = {"event_id": f"e-{number}", "at": _stamp(moment), "subject": {"id": "alice"}}
    request_id = f"r-{number % 3}"
    if kind in ("request", "break-glass"):
        return {**base, "type": "request.created", "request_id": request_id,
                "resources": [{"id": "db/a", "env": "prod", "sensitivity": "critical"}],
                "reason": "testing", "ticket": "T-1", "ttl_s": 60,
                "break_glass": kind == "break-glass"}
    if kind == "session":
        return _session(moment, number) | {"request_id": request_id}
    if kind == "activity":
        return {**base, "type": "session.activity", "session_id": f"s-{number}",
                "resource": "elsewhere", "action": "read"}
    if kind == "review":
        return {**base, "type": "request.reviewed", "request_id": request_id,
                "reviewer": {"id": "carol"}, "outcome": "denied"}
    if kind == "withdrawn":
        return {**base, "type": "request.withdrawn", "request_id": request_id}
    return {**base, "type": "lock.released", "target": {"subject": "alice"}}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(KINDS, MOMENTS), max_size=8), st.one_of(st.none(), MOMENTS))
def test_replay_never_raises_at_any_time_in_years_1_to_9999(
        events: list[tuple[str, datetime]], until: datetime | None) -> None:
    raws = [_raw(kind, moment, number) for number, (kind, moment) in enumerate(events)]
    for item in _replay(raws, until):
        assert isinstance(item, Decision | BadLine | UndecidedTick)
