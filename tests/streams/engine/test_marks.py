"""The redelivery mark of version 2 (issue M): the record's own bytes and broker time, no
event serialized again; marks of version 1 stored before an upgrade still drop their
redeliveries (policy.decide.applied_mark, applied_mark_v1)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from importlib import resources

import orjson

from policy import decide
from policy.decide import V1_MARK_LENGTH, applied_mark, applied_mark_v1
from schemas.events import INPUT_EVENT
from schemas.policy import parse_policy
from schemas.state import StoredSubject, SubjectState
from streams.engine.codec import decode_stored, encode_stored
from streams.engine.plan import LOG_APPEND_TIME, BatchPlan, Record, plan_batch, stored_keys
from streams.engine.topics import InputTopics
from tests.factories import at, raw_request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
TOPICS = InputTopics(requests="jit.requests", sessions="jit.sessions")


def _record(offset: int, value: bytes, seconds: float) -> Record:
    return Record("jit.requests", 0, offset, b"alice", value, at(seconds).timestamp(),
                  LOG_APPEND_TIME)


def _plan(records: list[Record], stored: bytes | None) -> BatchPlan:
    return plan_batch(records, {where: stored for where in stored_keys(records)}, POLICY,
                      input_topics=TOPICS, decisions_topic="jit.decisions",
                      deadletter_topic="jit.deadletter", max_event_bytes=64 * 1024,
                      now=lambda: datetime(2026, 11, 23, 12, tzinfo=UTC),
                      require_broker_time=True)


def _actions(plan: BatchPlan) -> list[str]:
    return [orjson.loads(out.value or b"")["action"] for out in plan.outbound]


def _as_stored_before_the_upgrade(value: bytes, records: list[Record]) -> bytes:
    """``value`` with its redelivery memory as the version before issue M wrote it: the
    v1 mark of each record, in order."""
    stored = decode_stored(value)
    assert stored is not None
    state = stored.tenants["default"]
    marks = tuple(applied_mark_v1(INPUT_EVENT.validate_json(record.value or b""),
                                  datetime.fromtimestamp(record.timestamp or 0, UTC))
                  for record in records)
    assert len(state.applied) == len(marks)
    old = dataclasses.replace(state, applied=marks)
    return encode_stored(StoredSubject(tenants={"default": old}))


FIRST = orjson.dumps(raw_request("r-1", [("db", "prod")]))
SECOND = orjson.dumps(raw_request("r-2", [("db2", "prod")], t=1))
THIRD = orjson.dumps(raw_request("r-3", [("db3", "prod")], t=2))


def test_v1_is_the_mark_the_version_before_wrote() -> None:
    """Pinned to what main (ad2e788) computed, so a v1 mark stored before still matches."""
    item = INPUT_EVENT.validate_python(raw_request("r-1", [("db", "prod")]))
    assert applied_mark_v1(item) == "944ee027cb9ff75e"
    assert applied_mark_v1(item, at(1)) == "61933e5f01393a03"
    assert len(applied_mark(item, at(1), FIRST)) == 2 + V1_MARK_LENGTH


def test_a_redelivered_record_is_decided_once() -> None:
    records = [_record(0, FIRST, 0), _record(1, SECOND, 1)]
    first = _plan(records, None)
    assert _actions(first) == ["approve", "approve"]
    again = _plan(records, first.writes[b"alice"].value)
    assert again.outbound == []
    assert again.writes[b"alice"].value == first.writes[b"alice"].value


def test_the_same_event_in_other_bytes_or_at_another_time_is_another_record() -> None:
    """Never taken for a redelivery: the same event appended again a millisecond later, or
    one whose bytes differ (here only in spacing) at the same broker time. Both are
    decided; a second request of one id is denied ``request-id-reused``."""
    first = _plan([_record(0, FIRST, 0)], None)
    stored = first.writes[b"alice"].value
    later = _plan([_record(1, FIRST, 0.001)], stored)
    assert _actions(later) == ["deny"]
    spaced = orjson.dumps(orjson.loads(FIRST), option=orjson.OPT_INDENT_2)
    respaced = _plan([_record(1, spaced, 0)], stored)
    assert _actions(respaced) == ["deny"]


def test_whitespace_around_the_record_is_not_part_of_it() -> None:
    """A replay strips its lines (and the export, replay_line, strips the records it
    writes): the stream's mark leaves the same whitespace out, so both take the same
    records for one."""
    first = _plan([_record(0, FIRST, 0)], None)
    padded = _plan([_record(1, b" " + FIRST + b"\n", 0)], first.writes[b"alice"].value)
    assert padded.outbound == []


def test_a_record_decided_before_the_upgrade_is_still_a_redelivery_after_it() -> None:
    """An old worker decided FIRST and SECOND and stored their v1 marks, then stopped before
    its offsets were committed: the new one reads both again, drops them, decides THIRD and
    stores its v2 mark beside the v1 ones, then drops THIRD's redelivery too."""
    before = [_record(0, FIRST, 0), _record(1, SECOND, 1)]
    old = _as_stored_before_the_upgrade(_plan(before, None).writes[b"alice"].value or b"",
                                        before)
    upgraded = _plan([*before, _record(2, THIRD, 2)], old)
    assert _actions(upgraded) == ["approve"]
    value = upgraded.writes[b"alice"].value
    stored = decode_stored(value)
    assert stored is not None
    assert [len(mark) for mark in stored.tenants["default"].applied] \
        == [V1_MARK_LENGTH, V1_MARK_LENGTH, V1_MARK_LENGTH + 2]
    assert _plan([*before, _record(2, THIRD, 2)], value).outbound == []


def test_a_v1_mark_behind_v2_marks_is_still_found() -> None:
    """Not only the oldest: a v1 mark anywhere in the memory (written by an older worker
    that took a partition back during a rolling upgrade) drops its redelivery."""
    item = INPUT_EVENT.validate_json(SECOND)
    fresh = INPUT_EVENT.validate_json(FIRST)
    state, _ = decide(SubjectState(), fresh, at(0), POLICY.policy, received=at(0), raw=FIRST)
    mixed = dataclasses.replace(state, applied=(*state.applied, applied_mark_v1(item, at(1))))
    assert decide(mixed, item, at(1), POLICY.policy, received=at(1), raw=SECOND) \
        == (mixed, ())
    # Only the same record: the same event at another broker time is decided.
    assert decide(mixed, item, at(2), POLICY.policy, received=at(2), raw=SECOND)[1] != ()



def test_a_replay_of_the_export_stores_the_marks_the_stream_stored() -> None:
    """A replay line is the record with a ``broker_time`` member appended (the export,
    replay_line): the mark is made of the record's bytes, not the line's, so the state a
    replay ends with equals the stream's (the kill -9 scenario compares the two tables)."""
    from streams.engine.codec import replay_line
    from streams.engine.replay import Replay, replay_lines

    value = FIRST
    plan = _plan([_record(0, value, 0)], None)
    ((_, stream_value),) = [(write.key, write.value) for write in plan.writes.values()]
    replay = Replay()
    list(replay_lines([replay_line(value, at(0)) or b""], POLICY, replay, 64 * 1024,
                      until=at(0)))
    (state,) = replay.states.values()
    assert encode_stored(state) == stream_value


def test_the_record_of_a_line_is_the_line_without_its_appended_broker_time() -> None:
    from streams.engine.codec import record_of_line, replay_line

    for value in (b'{"a":1}', b'  {"a": "x"}  \n', b"{}", FIRST):
        assert record_of_line(replay_line(value, at(3)) or b"") == value.strip()
    # A line written by hand: the broker time elsewhere, or none: the line as it is.
    for line in (b'{"broker_time":"2026-11-23T12:00:00Z","a":1}', b'{"a":1}'):
        assert record_of_line(line) == line
