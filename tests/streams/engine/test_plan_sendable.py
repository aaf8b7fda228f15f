"""A record with neither key nor value (a tombstone without a key) must be dead-lettered as
a record a Kafka producer accepts: aiokafka's ``send`` refuses one with neither, and a
refused dead letter failed the whole batch, which was then redelivered for ever (a wedged
partition). See CONTRACT "Dead letters of records with neither key nor value"."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

import orjson
import pytest

from schemas.policy import parse_policy
from schemas.state import MAX_STORED_BYTES, STORED_RECORD_HEADROOM
from streams.engine.dead_letters import (
    DEAD_LETTER_MAX_BYTES,
    KEY_OMITTED_HEADER,
    NULL_RECORD,
    VALUE_NULL_HEADER,
    VALUE_OMITTED_HEADER,
    dead_letter_limit,
)
from streams.engine.plan import LOG_APPEND_TIME, BatchPlan, Record, plan_batch, stored_keys
from streams.engine.repartition import Repartition
from streams.engine.topics import InputTopics
from tests.factories import at, raw_request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
TOPICS = InputTopics(requests="jit.requests", sessions="jit.sessions")
REPARTITION = Repartition("jitwatch-repartition", 1)
BROKER = at(5).timestamp()


def _null(topic: str, offset: int, stamped: bool = True) -> Record:
    return Record(topic, 0, offset, None, None, timestamp=BROKER if stamped else None,
                  timestamp_type=LOG_APPEND_TIME if stamped else 0)


def _good(offset: int) -> Record:
    raw = raw_request(f"r-{offset}", [("db", "prod")], subject="alice")
    return Record("jit.requests", 0, offset, b"alice", orjson.dumps(raw), timestamp=BROKER,
                  timestamp_type=LOG_APPEND_TIME)


def _plan(records: list[Record], max_record_bytes: int | None = None) -> BatchPlan:
    return plan_batch(records, dict.fromkeys(stored_keys(records)), POLICY,
                      input_topics=TOPICS, decisions_topic="jit.decisions",
                      deadletter_topic="jit.deadletter", max_event_bytes=65536,
                      now=lambda: datetime(2026, 12, 7, tzinfo=UTC),
                      commands_topic="jitwatch-commands", require_broker_time=True,
                      repartition=REPARTITION, max_record_bytes=max_record_bytes)


@pytest.mark.parametrize("topic", ["jit.requests", "jit.sessions"])
def test_a_record_with_neither_key_nor_value_is_a_sendable_dead_letter(topic: str) -> None:
    plan = _plan([_null(topic, 3), _good(4)])
    dead, decision = plan.outbound
    assert (dead.topic, dead.key, dead.value) == ("jit.deadletter", None, b"")
    headers = dict(dead.headers)
    assert headers["error.class"] == NULL_RECORD.encode()
    assert headers[VALUE_NULL_HEADER] == b"true"
    assert (headers["source.topic"], headers["source.offset"]) == (topic.encode(), b"3")
    # The rest of the batch is decided; the null record counts as done for the tick gate.
    assert decision.topic == "jit.decisions"
    assert orjson.loads(decision.value)["action"] == "approve"  # type: ignore[arg-type]
    assert [(offset, at is None) for _, _, offset, at in plan.decided] == [
        (3, True), (4, False)]


@pytest.mark.parametrize("record", [
    _null("jit.requests", 1, stamped=False),  # refused for its clock first
    _null("jitwatch-commands", 1),  # the watcher's own topic: invalid-command
    _null(REPARTITION.topic, 1),  # the repartition topic: invalid-forward
], ids=["clock-untrusted", "commands", "repartition"])
def test_every_path_to_a_dead_letter_makes_it_sendable(record: Record) -> None:
    [dead] = _plan([record]).outbound
    assert (dead.key, dead.value) == (None, b"")
    assert dict(dead.headers)[VALUE_NULL_HEADER] == b"true"


def test_a_keyless_record_with_a_value_keeps_its_bytes_and_no_marker() -> None:
    # Sendable as it is (a value): the contract's "original bytes unchanged" holds, and
    # an empty value stays an empty value (no marker: it was not null).
    for value in (b"{}", b""):
        [dead] = _plan([Record("jit.requests", 0, 1, None, value, timestamp=BROKER,
                               timestamp_type=LOG_APPEND_TIME)]).outbound
        assert (dead.key, dead.value) == (None, value)
        assert VALUE_NULL_HEADER not in dict(dead.headers)
        assert dict(dead.headers)["error.class"] == b"missing-key"


def test_no_outbound_record_has_neither_key_nor_value() -> None:
    # Every shape of null and empty key and value, on every topic the planner reads.
    records = [Record(topic, 0, offset, key, value, timestamp=BROKER,
                      timestamp_type=LOG_APPEND_TIME)
               for offset, (topic, key, value) in enumerate(
                   (topic, key, value)
                   for topic in ("jit.requests", "jit.sessions", "jitwatch-commands",
                                 REPARTITION.topic)
                   for key in (None, b"", b"alice")
                   for value in (None, b""))]
    plan = _plan(records)
    assert len(plan.outbound) == len(records)
    assert all(out.key is not None or out.value is not None for out in plan.outbound)


LIMIT = 1_000_000


def _big(key: bytes, value: bytes) -> Record:
    return Record("jit.requests", 0, 9, key, value, timestamp=BROKER,
                  timestamp_type=LOG_APPEND_TIME)


def test_a_dead_letter_over_the_producers_limit_drops_its_value_and_says_so() -> None:
    # The broker takes input up to its message.max.bytes (1,048,588 by default), more than
    # the worker's producer sends (max_request_size, 1,000,000): such a dead letter was
    # refused, and its batch with it, for ever.
    [dead] = _plan([_big(b"alice", b"x" * 999_900)], LIMIT).outbound
    assert (dead.key, dead.value) == (b"alice", b"")
    headers = dict(dead.headers)
    assert headers[VALUE_OMITTED_HEADER] == b"999900"
    assert headers["error.class"] == b"oversized"
    assert KEY_OMITTED_HEADER not in headers


def test_a_key_too_large_to_send_is_dropped_too() -> None:
    [dead] = _plan([_big(b"k" * 999_700, b"{}")], LIMIT).outbound
    assert (dead.key, dead.value) == (None, b"")
    headers = dict(dead.headers)
    assert (headers[VALUE_OMITTED_HEADER], headers[KEY_OMITTED_HEADER]) == (b"2", b"999700")
    [dead] = _plan([_big(b"k" * 999_700, b"")], LIMIT).outbound  # nothing to omit: no header
    assert (dead.key, dead.value) == (None, b"")
    assert VALUE_OMITTED_HEADER not in dict(dead.headers)


def test_a_dead_letter_within_the_limit_keeps_its_bytes() -> None:
    value = b"y" * 900_000
    [dead] = _plan([_big(b"alice", value)], LIMIT).outbound
    assert (dead.key, dead.value) == (b"alice", value)
    assert not {VALUE_OMITTED_HEADER, KEY_OMITTED_HEADER} & set(dict(dead.headers))
    [dead] = _plan([_big(b"alice", b"z" * 2_000_000)]).outbound  # no limit: tools, tests
    assert dead.value == b"z" * 2_000_000


@pytest.mark.parametrize("max_stored_bytes", [MAX_STORED_BYTES, 8 * 1024 * 1024])
def test_a_dead_letter_fits_a_topic_at_the_brokers_default_limit_too(
        max_stored_bytes: int) -> None:
    # The worker's producer sends stored values at JITWATCH_MAX_STORED_BYTES with their key
    # (8 MiB and more if so set), but the dead-letter topic takes what the broker's default
    # message.max.bytes does (1,048,588): a dead letter in between would pass the producer,
    # the broker would refuse it, and its batch would never be acknowledged.
    bound = dead_letter_limit(max_stored_bytes + STORED_RECORD_HEADROOM)
    assert bound == DEAD_LETTER_MAX_BYTES < 1_048_588
    [dead] = _plan([_big(b"alice", b"x" * 1_040_000)], bound).outbound
    assert (dead.key, dead.value) == (b"alice", b"")
    assert dict(dead.headers)[VALUE_OMITTED_HEADER] == b"1040000"


def test_a_smaller_producer_limit_bounds_dead_letters_too() -> None:
    small = 64 * 1024 + STORED_RECORD_HEADROOM  # JITWATCH_MAX_STORED_BYTES at its least
    assert dead_letter_limit(small) == small
