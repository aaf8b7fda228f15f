"""The cross-topic hold: decide a record only once its partition's other input topics are
decided up to its broker time, so the stream decides in broker-time order across topics,
the order ``simulate`` replays (a watermark, as Kafka Streams' ``max.task.idle.ms``).

Kafka orders each topic-partition on its own, and the consumer fetches them on their own:
a partition whose fetched records are still buffered is left out of the next fetch, so
under load the sessions topic's later records can reach the agent a batch or more before
the requests topic's earlier ones. Deciding them as they came ended nothing when a
``task.completed`` overtook the request of its grant, and the grant lived until its TTL
(tests/integration/test_equivalence.py under load; ``simulate`` ends it at once).

A record on an input topic, stamped ``b`` by the broker, is decided once every input topic
of its partition is known to hold nothing undecided from before ``b``: a record of that
topic stamped at or after ``b`` was decided or is in the same batch (Kafka hands a
partition's records over in offset order, and LogAppendTime rises with them), or the topic
is decided (or in the batch) up to the end offset its last fetch reported, and that fetch
was answered at or after ``b``. The batch then orders what it decides by broker time
(:func:`streams.engine.plan.plan_batch`). The rest waits for a later batch, unacknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from streams.engine.deadlines import Moments, Offsets, PartitionClock
from streams.engine.records import LOG_APPEND_TIME, Record

__all__ = ["MAX_HOLD", "Since", "held_back"]

MAX_HOLD = timedelta(seconds=5)
"""How long a record is held at most (the worker's clock, from the first batch that held
it): a topic whose fetches keep failing must not stop its partition. Past it the record is
decided in the order it came, as before the hold. Counted from when it was first held, not
from its broker time: a worker seconds behind under load would otherwise hold nothing."""

Since = dict[tuple[str, int, int], datetime]
"""When each held record (topic, partition, offset) was first held."""


def _stamp(record: Record) -> datetime | None:
    if record.timestamp_type == LOG_APPEND_TIME and record.timestamp is not None:
        return datetime.fromtimestamp(record.timestamp, UTC)
    return None


def _frontier(topic: str, partition: int, seen: tuple[datetime, int] | None,
              clock: PartitionClock, end_offsets: Offsets, committed: Offsets,
              reported_at: Moments) -> datetime | None:
    """The time before which ``topic``/``partition`` holds nothing undecided that is not
    in the batch (``seen``: the batch's latest broker time and next offset there)."""
    where = (topic, partition)
    marks = [mark for mark in (clock.watermark.get(where), seen and seen[0]) if mark]
    # The group's commit counts too: it passes transaction markers, which are never
    # decided, so a topic ending on one would otherwise never look caught up.
    done = max((offset for offset in (clock.decided_offsets.get(where), committed.get(where),
                                      seen and seen[1]) if offset is not None), default=None)
    end, reported = end_offsets.get(where), reported_at.get(where)
    if end is not None and reported is not None and (
            end == 0 or (done is not None and done >= end)):
        marks.append(reported)  # caught up as of that fetch's answer
    return max(marks, default=None)


def held_back(records: Sequence[Record], inputs: Sequence[str], clock: PartitionClock,
              end_offsets: Offsets, committed: Offsets, reported_at: Moments, *,
              now: datetime, since: Since | None = None,
              max_hold: timedelta = MAX_HOLD) -> set[int]:
    """The indices of ``records`` to hold for a later batch (see the module).

    Only records of the ``inputs`` topics with a broker time wait: ticks are gated before
    they are sent, forwards are decided at their original's time, and a record without
    LogAppendTime is a dead letter whenever it is decided. ``clock`` is what this worker
    decided; ``end_offsets``, ``committed`` and ``reported_at`` are the consumer's view, as
    for the tick gate (:meth:`PartitionClock.caught_up`). Held records are a suffix of
    their topic-partition, so acknowledging the others never commits past one. ``since``
    (kept by the caller from call to call: a batch may be decided in slices) records when
    each record held was first held, and forgets it once it is decided, or 10 ``max_hold``
    on (held when a rebalance dropped it); a record held ``max_hold`` is decided (and the
    records before it in its partition's broker time with it).
    """
    since = {} if since is None else since
    for stale in [key for key, first in since.items() if now - first > 10 * max_hold]:
        del since[stale]
    seen: dict[tuple[str, int], tuple[datetime, int]] = {}
    stamps: list[datetime | None] = []
    for record in records:
        stamp = _stamp(record) if record.topic in inputs else None
        stamps.append(stamp)
        if stamp is not None:
            where = (record.topic, record.partition)
            last = seen.get(where)
            seen[where] = (stamp if last is None else max(last[0], stamp),
                           record.offset + 1 if last is None else max(last[1],
                                                                       record.offset + 1))
    safe: dict[int, datetime | None] = {}
    for partition in {partition for _, partition in seen}:
        fronts = [_frontier(topic, partition, seen.get((topic, partition)), clock,
                            end_offsets, committed, reported_at) for topic in inputs]
        safe[partition] = None if None in fronts else min(f for f in fronts if f)
    # A record held for max_hold lets its partition go up to its broker time.
    for index, record in enumerate(records):
        stamp, coordinates = stamps[index], (record.topic, record.partition, record.offset)
        if stamp is not None and coordinates in since and now - since[coordinates] >= max_hold:
            limit = safe.get(record.partition)
            safe[record.partition] = stamp if limit is None else max(limit, stamp)
    held: set[int] = set()
    waiting: set[tuple[str, int]] = set()
    for index, (record, stamp) in enumerate(zip(records, stamps, strict=True)):
        if stamp is None:
            continue
        where = (record.topic, record.partition)
        limit = safe[record.partition]
        coordinates = (record.topic, record.partition, record.offset)
        if where in waiting or limit is None or stamp > limit:
            held.add(index)
            waiting.add(where)
            since.setdefault(coordinates, now)
        else:
            since.pop(coordinates, None)
    return held
