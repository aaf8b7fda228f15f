"""The cross-topic hold without a broker: a record waits until the partition's other input
topics are decided up to its broker time (the stream-vs-simulate order of issue H).

The flake it closes (tests/integration/test_equivalence.py under load): a request's
record was fetched but not handed to the agent yet (its partition's records still
buffered, so the fetch after it left that partition out) while the sessions topic's
later ``task.completed`` was; the worker decided the completion first, found no grant to
end, and the grant lived on until its TTL, where simulate (broker-time order) ended it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.engine.deadlines import PartitionClock
from streams.engine.hold import MAX_HOLD, held_back
from streams.engine.records import LOG_APPEND_TIME, Record

REQ, SES, CMD = "jit.requests", "jit.sessions", "app-commands"
INPUTS = (REQ, SES)
T = datetime(2026, 12, 7, 1, 0, 0, 500000, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def rec(topic: str, offset: int, seconds: float | None, partition: int = 0) -> Record:
    stamp = None if seconds is None else at(seconds).timestamp()
    return Record(topic, partition, offset, b"alice", b"{}", stamp,
                  None if seconds is None else LOG_APPEND_TIME)


def clock_at(*decided: tuple[str, int, float]) -> PartitionClock:
    clock = PartitionClock()
    for topic, offset, seconds in decided:
        clock.decided(topic, 0, offset, at(seconds))
    return clock


def hold(records: list[Record], clock: PartitionClock, ends: dict[tuple[str, int], int],
         reported: dict[tuple[str, int], datetime], now: float = 1.0) -> set[int]:
    return held_back(records, INPUTS, clock, ends, {}, reported, now=at(now))


def test_a_session_record_waits_while_the_requests_fetch_is_older_than_it() -> None:
    # Requests decided to their end offset, but that end was reported before the
    # completion was appended: a request appended in between may not be fetched yet.
    clock = clock_at((REQ, 4, 0.0), (SES, 1, 0.0))
    records = [rec(SES, 2, 0.3)]
    assert hold(records, clock, {(REQ, 0): 5, (SES, 0): 3},
                {(REQ, 0): at(0.2), (SES, 0): at(0.35)}) == {0}


def test_it_is_decided_once_a_fetch_after_it_found_the_requests_decided() -> None:
    clock = clock_at((REQ, 4, 0.0), (SES, 1, 0.0))
    records = [rec(SES, 2, 0.3)]
    assert hold(records, clock, {(REQ, 0): 5, (SES, 0): 3},
                {(REQ, 0): at(0.3), (SES, 0): at(0.35)}) == set()


def test_it_waits_for_requests_fetched_but_not_handed_over_yet() -> None:
    # The flake: the request (offset 5) is in the consumer's buffer, not in this batch.
    clock = clock_at((REQ, 4, 0.0), (SES, 1, 0.0))
    records = [rec(SES, 2, 0.3)]
    assert hold(records, clock, {(REQ, 0): 6, (SES, 0): 3},
                {(REQ, 0): at(0.4), (SES, 0): at(0.35)}) == {0}
    # ...and is decided with it when it comes: the batch orders them by broker time.
    records = [rec(SES, 2, 0.3), rec(REQ, 5, 0.25)]
    assert hold(records, clock, {(REQ, 0): 6, (SES, 0): 3},
                {(REQ, 0): at(0.4), (SES, 0): at(0.35)}) == set()


def test_a_later_record_of_the_other_topic_in_the_batch_lets_it_pass() -> None:
    clock = PartitionClock()
    records = [rec(SES, 0, 0.3), rec(REQ, 0, 0.5)]
    # The request at 0.5 waits for the sessions topic past 0.5 in turn.
    assert hold(records, clock, {}, {}) == {1}


def test_requests_wait_for_sessions_too() -> None:
    clock = clock_at((SES, 3, 0.0))
    records = [rec(REQ, 0, 0.3)]
    assert hold(records, clock, {(SES, 0): 5}, {(SES, 0): at(0.5)}) == {0}
    assert hold(records, clock, {(SES, 0): 4}, {(SES, 0): at(0.5)}) == set()


def test_held_records_are_a_suffix_of_their_partition() -> None:
    # Acknowledging a later offset of a topic-partition past a held one would commit
    # past it; a broker time that went back (a clock step) must not do that.
    clock = PartitionClock()
    records = [rec(SES, 0, 0.3), rec(SES, 1, 0.2), rec(REQ, 0, 0.25)]
    assert hold(records, clock, {(SES, 0): 2}, {(SES, 0): at(0.3)}) == {0, 1}


def test_partitions_are_held_each_on_their_own() -> None:
    clock = PartitionClock()
    records = [rec(SES, 0, 0.3, partition=1), rec(REQ, 0, 0.1, partition=2),
               rec(SES, 0, 0.4, partition=2)]
    ends = {(REQ, 1): 0, (SES, 2): 1}
    reported = {(REQ, 1): at(0.5), (SES, 2): at(0.5)}
    assert hold(records, clock, ends, reported) == {2}


def test_other_topics_and_records_without_broker_time_never_wait() -> None:
    # Ticks are gated before they are sent; a record without LogAppendTime is a dead
    # letter (clock-untrusted) whenever it is decided.
    records = [rec(CMD, 0, 0.3), rec(SES, 0, None)]
    assert hold(records, PartitionClock(), {}, {}) == set()


def test_a_record_held_longer_than_the_bound_is_decided_all_the_same() -> None:
    # A fetch that keeps failing must not stop the partition: after MAX_HOLD of being held
    # the record is decided in the order it has (as before the hold), and so is all before
    # it; the bound runs from when it was first held, not from its broker time (a worker
    # seconds behind would otherwise hold nothing).
    records = [rec(SES, 0, 0.3), rec(SES, 1, 0.4)]
    since: dict[tuple[str, int, int], datetime] = {}
    late = 60.0
    assert held_back(records, INPUTS, PartitionClock(), {}, {}, {}, now=at(late),
                     since=since) == {0, 1}
    assert since == {(SES, 0, 0): at(late), (SES, 0, 1): at(late)}
    # A batch decided in slices: a slice without record 1 leaves its time as it is.
    assert held_back(records[:1], INPUTS, PartitionClock(), {}, {}, {},
                     now=at(late + 0.1), since=since) == {0}
    assert since == {(SES, 0, 0): at(late), (SES, 0, 1): at(late)}
    bound = late + MAX_HOLD.total_seconds()
    records.append(rec(SES, 2, 0.5))
    assert held_back(records, INPUTS, PartitionClock(), {}, {}, {}, now=at(bound),
                     since=since) == {2}  # both held since `late`: both go
    assert since == {(SES, 0, 2): at(bound)}  # decided ones forgotten
    # One dropped at a rebalance (never offered again) is forgotten in time.
    assert held_back([], INPUTS, PartitionClock(), {}, {}, {},
                     now=at(bound + 11 * MAX_HOLD.total_seconds()), since=since) == set()
    assert since == {}


def test_offsets_not_decided_here_yet_count_from_the_committed_offset() -> None:
    records = [rec(SES, 0, 0.3)]
    ends = {(REQ, 0): 7}
    reported = {(REQ, 0): at(0.4)}
    assert held_back(records, INPUTS, PartitionClock(), ends, {(REQ, 0): 7}, reported,
                     now=at(1)) == set()
    assert held_back(records, INPUTS, PartitionClock(), ends, {(REQ, 0): 6}, reported,
                     now=at(1)) == {0}


def test_a_commit_past_a_transaction_marker_counts_as_caught_up() -> None:
    # Offset 5 is a commit marker: never decided, but the group's commit passes it.
    clock = clock_at((REQ, 4, 0.0))
    records = [rec(SES, 0, 0.3)]
    ends, reported = {(REQ, 0): 6}, {(REQ, 0): at(0.4)}
    assert held_back(records, INPUTS, clock, ends, {}, reported, now=at(1)) == {0}
    assert held_back(records, INPUTS, clock, ends, {(REQ, 0): 6}, reported,
                     now=at(1)) == set()
