"""The expiry timer's pieces without a broker: deadline index and tick commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.errors import InputError
from streams.expiry import DeadlineIndex, PartitionClock, decode_command, encode_tick, partition_of

T = datetime(2026, 11, 23, 10, 0, 0, 714523, tzinfo=UTC)


def test_index_keeps_one_current_deadline_per_subject_and_tenant() -> None:
    index = DeadlineIndex()
    index.set(b"alice", "acme", T + timedelta(seconds=5))
    index.set(b"alice", "acme", T + timedelta(seconds=2))  # supersedes
    index.set(b"alice", "globex", T + timedelta(seconds=3))
    index.set(b"bob", "acme", T + timedelta(seconds=1))
    index.set(b"bob", "acme", None)  # nothing left to run out
    assert len(index) == 2
    assert index.due(T) == []
    assert index.due(T + timedelta(seconds=10)) == [
        (T + timedelta(seconds=2), b"alice", "acme"),
        (T + timedelta(seconds=3), b"alice", "globex"),
    ]
    assert index.due(T + timedelta(days=1)) == []


def test_index_set_many_is_set_for_each() -> None:
    entries = [(T + timedelta(seconds=5), b"alice", "acme"),
               (T + timedelta(seconds=2), b"alice", "acme"),
               (T + timedelta(seconds=3), b"alice", "globex"),
               (T + timedelta(seconds=1), b"bob", "acme"),
               (T + timedelta(seconds=4), b"carol", "acme")]
    one_by_one, at_once = DeadlineIndex(), DeadlineIndex()
    for index in (one_by_one, at_once):
        index.set(b"carol", "acme", T + timedelta(seconds=9))  # held before: superseded
        index.set(b"dave", "acme", T + timedelta(seconds=6))  # held before: kept
    for deadline, key, tenant in entries:
        one_by_one.set(key, tenant, deadline)
    at_once.set_many(entries)
    until = T + timedelta(seconds=10)
    assert len(at_once) == len(one_by_one) == 5
    assert at_once.due(until) == one_by_one.due(until)


def test_tick_round_trips_at_full_precision() -> None:
    tick = decode_command(b"alice", encode_tick(T, b"alice", "acme"))
    assert tick.at == T, "a tick rounded to milliseconds would miss its deadline"
    assert (tick.tenant, tick.subject.id, tick.type) == ("acme", "alice", "clock.tick")


@pytest.mark.parametrize(("key", "value"), [
    (b"bob", encode_tick(T, b"alice", "acme")),
    (b"alice", b'{"type": "request.created"}'),
    (b"alice", None),
])
def test_bad_commands_are_refused(key: bytes, value: bytes | None) -> None:
    with pytest.raises(InputError) as caught:
        decode_command(key, value)
    assert caught.value.error_class == "invalid-command"


def test_partition_of_matches_kafkas_default_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    for key in (b"alice", b"spiffe://acme.example/ns/ci/sa/deployer", b"x" * 300):
        assert partition_of(key, 8) == DefaultPartitioner()(key, list(range(8)), [])


def test_watermark_says_when_input_past_a_deadline_was_decided() -> None:
    clock = PartitionClock()
    assert not clock.passed("jit.requests", 0, T), "nothing decided yet"
    clock.decided("jit.requests", 0, 7, T - timedelta(seconds=1))
    assert not clock.passed("jit.requests", 0, T)
    clock.decided("jit.requests", 0, 8, T + timedelta(seconds=1))
    clock.decided("jit.requests", 0, 3, T - timedelta(seconds=5))  # older: no step back
    assert clock.passed("jit.requests", 0, T)
    assert clock.decided_offsets[("jit.requests", 0)] == 9
    assert not clock.passed("jit.sessions", 0, T), "each topic keeps its own order"
    assert not clock.passed("jit.requests", 1, T)


def test_a_dead_letter_counts_as_decided_without_moving_the_watermark() -> None:
    clock = PartitionClock()
    clock.decided("jit.requests", 0, 7, T - timedelta(seconds=1))
    clock.decided("jit.requests", 0, 8, None)  # dead-lettered unread: no event time
    assert clock.decided_offsets[("jit.requests", 0)] == 9, "decided to its end"
    assert not clock.passed("jit.requests", 0, T)


def test_restoring_a_taken_deadline_never_hides_a_newer_one() -> None:
    """The timer takes due deadlines, then awaits sends; a batch decided meanwhile may set
    the subject's next deadline, which a put-back must not overwrite (found by the poison
    fault scenario at 100k events: a subject's last expiries never fired)."""
    index = DeadlineIndex()
    index.set(b"alice", "default", T)
    assert index.due(T) == [(T, b"alice", "default")]
    later = T + timedelta(minutes=5)
    index.set(b"alice", "default", later)  # a batch: T ended in-step, next is later
    index.restore(b"alice", "default", T)  # the timer puts back what it held
    assert index.due(later) == [(later, b"alice", "default")]
    index.restore(b"bob", "default", T)  # nothing newer: put back
    assert index.due(T) == [(T, b"bob", "default")]
