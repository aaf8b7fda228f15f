"""The expiry timer's pieces without a broker: deadline index, partition clock, tick gate."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

from streams.engine.deadlines import DeadlineIndex, GroupProgress, PartitionClock

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


INPUTS = ("jit.requests", "jit.sessions")


def _offsets(requests: int | None, sessions: int | None) -> dict[tuple[str, int], int | None]:
    return {("jit.requests", 0): requests, ("jit.sessions", 0): sessions}


FRESH = {("jit.requests", 0): T + timedelta(days=1), ("jit.sessions", 0): T + timedelta(days=1)}
"""End offsets reported after every deadline of these tests."""


def test_the_gate_holds_a_tick_until_every_input_topic_is_past_it_or_caught_up() -> None:
    clock = PartitionClock()
    ends, committed = _offsets(10, 4), _offsets(None, None)
    assert not clock.may_expire(INPUTS, 0, T, ends, committed, FRESH), "nothing decided yet"
    clock.decided("jit.requests", 0, 2, T + timedelta(seconds=1))  # requests past T
    assert not clock.may_expire(INPUTS, 0, T, ends, committed, FRESH), "sessions still behind"
    clock.decided("jit.sessions", 0, 3, T - timedelta(seconds=1))  # sessions at their end
    assert clock.may_expire(INPUTS, 0, T, ends, committed, FRESH)
    later = T + timedelta(seconds=5)
    assert not clock.may_expire(INPUTS, 0, later, ends, committed, FRESH), \
        "requests neither past the later deadline nor decided to their end offset"
    clock.decided("jit.requests", 0, 9, None)  # a dead letter at the end counts as decided
    assert clock.may_expire(INPUTS, 0, later, ends, committed, FRESH)


def test_the_gate_counts_from_the_committed_offset_and_waits_for_a_first_fetch() -> None:
    clock = PartitionClock()
    assert not clock.may_expire(INPUTS, 0, T, _offsets(None, 0), _offsets(None, None), FRESH), \
        "no fetch answered for requests yet"
    assert clock.may_expire(INPUTS, 0, T, _offsets(0, 0), _offsets(None, None), FRESH), \
        "nothing was ever written to either topic"
    assert clock.may_expire(INPUTS, 0, T, _offsets(5, 0), _offsets(5, None), FRESH), \
        "decided (and committed) up to the end before this worker took the partition"
    assert not clock.may_expire(INPUTS, 0, T, _offsets(5, 0), _offsets(4, None), FRESH)
    clock.decided("jit.requests", 0, 3, T - timedelta(seconds=1))
    assert not clock.may_expire(INPUTS, 0, T, _offsets(5, 0), _offsets(5, None), FRESH), \
        "what was decided here wins over an older committed offset"
    assert not clock.may_expire(INPUTS, 1, T, _offsets(5, 0), _offsets(5, None), FRESH), \
        "offsets of another partition say nothing about this one"


def test_a_tick_waits_for_every_owned_partition_and_the_forwards() -> None:
    """Issue H, with forwarding: a misplaced record of the subject may wait on any owned
    input partition until forwarded, and then on the repartition topic until decided."""
    inputs, repartition = ("req", "ses"), "rep"
    ends = {(topic, number): 0 for topic in (*inputs, repartition) for number in (0, 1)}
    now = dict.fromkeys(ends, T)  # every end offset reported at the deadline
    ends[("req", 1)] = 3  # partition 1 has three records not decided yet
    clock = PartitionClock()
    assert clock.may_expire_owned(inputs, repartition, 0, {0}, T, ends, {}, now)
    assert not clock.may_expire_owned(inputs, repartition, 0, {0, 1}, T, ends, {}, now)
    for offset in range(3):  # decided (or forwarded) past the deadline
        clock.decided("req", 1, offset, T)
    assert clock.may_expire_owned(inputs, repartition, 0, {0, 1}, T, ends, {}, now)
    # One was forwarded to partition 0 (offset 0): not decided yet.
    clock.expect(repartition, 0, 0, T - timedelta(seconds=1))
    assert not clock.may_expire_owned(inputs, repartition, 0, {0, 1}, T, ends, {}, now)
    clock.decided(repartition, 0, 0, T)
    assert clock.may_expire_owned(inputs, repartition, 0, {0, 1}, T, ends, {}, now)


def test_a_later_forward_decided_first_does_not_pass_an_earlier_one() -> None:
    """Forwards from two partitions interleave on the repartition topic: one of a record
    stamped after the deadline may be decided while this worker's forward of a record
    stamped before it (from a partition fetched later) is still on its way. The 100,000
    event fault runs met this: the repartition topic counted as past the deadline by the
    original's time of what it had decided."""
    inputs, repartition = ("req", "ses"), "rep"
    ends = {(topic, number): 0 for topic in (*inputs, repartition) for number in (0, 1, 2)}
    now = dict.fromkeys(ends, T)
    clock = PartitionClock()
    clock.decided("req", 2, 0, T + timedelta(seconds=1))  # forwarded first: offset 0
    clock.expect(repartition, 0, 0, T + timedelta(seconds=1))
    clock.decided("req", 1, 0, T - timedelta(seconds=1))  # forwarded next: offset 1
    clock.expect(repartition, 0, 1, T - timedelta(seconds=1))
    ends[(repartition, 0)] = 2
    # The first forward is decided; its own broker time (appended after T) is the mark.
    clock.decided(repartition, 0, 0, T + timedelta(seconds=2))
    assert clock.passed(repartition, 0, T)
    assert not clock.may_expire_owned(inputs, repartition, 0, {0, 1, 2}, T, ends, {}, now), \
        "the forward of the record stamped before the deadline is not decided"
    clock.decided(repartition, 0, 1, T + timedelta(seconds=2))
    assert clock.may_expire_owned(inputs, repartition, 0, {0, 1, 2}, T, ends, {}, now)
    assert clock.forwards[(repartition, 0)] == deque(), "decided forwards are let go"
    later = T + timedelta(seconds=5)
    assert not clock.may_expire_owned(inputs, repartition, 0, {0, 1, 2}, T, ends, {}, now,
                                      others_since=later), \
        "other forwards known only from later on: the partition must be past that moment"


def test_the_gate_trusts_no_end_offset_reported_before_the_deadline() -> None:
    # The kill -9 scenario's lock tick: a fetch answered while the producer was still
    # appending reported end offset 2917; the worker decided up to it, and the next fetch
    # waited for a long poll in flight. Records 2917 on, stamped before the deadline, were
    # in the log unfetched: caught up to 2917 is no evidence about them.
    clock = PartitionClock()
    clock.decided("jit.sessions", 0, 54, T - timedelta(seconds=20))
    clock.decided("jit.requests", 0, 2916, T - timedelta(milliseconds=200))
    ends = _offsets(2917, 55)
    before = {("jit.requests", 0): T - timedelta(milliseconds=190),
              ("jit.sessions", 0): T + timedelta(milliseconds=300)}
    assert not clock.may_expire(INPUTS, 0, T, ends, _offsets(None, None), before), \
        "requests' end offset is from before the deadline"
    after = {**before, ("jit.requests", 0): T}
    assert clock.may_expire(INPUTS, 0, T, ends, _offsets(None, None), after)
    assert not clock.may_expire(INPUTS, 0, T, ends, _offsets(None, None),
                                {("jit.requests", 0): None, ("jit.sessions", 0): T}), \
        "an end offset not known when reported proves nothing"
    clock.decided("jit.requests", 0, 2917, T)  # an event stamped at the deadline
    assert clock.may_expire(INPUTS, 0, T, ends, _offsets(None, None), before), \
        "past the deadline needs no end offset"


def test_a_misplaced_record_another_worker_has_not_committed_holds_the_tick() -> None:
    """Issue I: a record of a subject owned here may wait on an input partition another
    worker owns until that worker forwards it. Its forward is acknowledged before its offset
    is committed, so the tick waits until the group's committed offset of every partition
    this worker does not own reaches an end offset reported at or after the deadline, and
    then for the repartition topic decided to an end offset reported after that commit
    was seen."""
    inputs, repartition = ("req", "ses"), "rep"
    ends = {(topic, number): 0 for topic in (*inputs, repartition) for number in (0, 1)}
    now = dict.fromkeys(ends, T)  # this worker's fetches, reported at the deadline
    clock, progress = PartitionClock(), GroupProgress()

    def may_expire(reported: dict[tuple[str, int], datetime | None]) -> bool:
        return clock.may_expire_group(inputs, repartition, 0, {0}, 2, T, ends, {}, reported,
                                      progress)

    assert not may_expire(now), "nothing known of partition 1, owned by another worker"
    # Partition 1 of requests, owned elsewhere, holds record 0: misplaced, for a subject of
    # partition 0, stamped before the deadline and not yet forwarded (nor committed).
    elsewhere_ends = {("req", 1): 1, ("ses", 1): 0}
    progress.observe(T + timedelta(milliseconds=10), elsewhere_ends,
                     T + timedelta(milliseconds=20), {("req", 1): 0, ("ses", 1): None})
    assert not may_expire(now), "the other worker has not committed past the record"
    progress.observe(T - timedelta(seconds=1), {("req", 1): 0, ("ses", 1): 0},
                     T + timedelta(milliseconds=30), {("req", 1): 0, ("ses", 1): None})
    assert not may_expire(now), "an end offset reported before the deadline proves nothing"
    # The other worker forwarded it (to repartition partition 0, offset 0) and committed.
    seen = T + timedelta(seconds=1)
    progress.observe(T + timedelta(seconds=1), elsewhere_ends, seen,
                     {("req", 1): 1, ("ses", 1): None})
    ends[(repartition, 0)] = 1
    assert not may_expire(now), "the repartition topic reported before the commit was seen"
    after = {**now, (repartition, 0): seen}
    assert not may_expire(after), "the forward is not decided yet"
    clock.decided(repartition, 0, 0, T - timedelta(milliseconds=5))
    assert may_expire(after)
    assert clock.may_expire_group(inputs, repartition, 0, {0, 1}, 2, T, ends, {}, now,
                                  GroupProgress()), \
        "a worker that owns every partition needs nothing from the group"
