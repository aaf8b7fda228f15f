"""Fixes to faust's flow control and gap bookkeeping, so no record handed to a stream is lost.

Found with the kill -9 fault scenario (CI run of 84f84c7: ``kill-9: FAILED, 100000 events,
20 faults, 358 lost, 323 duplicates``): a run of a partition's events was decided after
later events of the same partition, and its commits stalled in between. Traced with
faust's own DEVLOG and the offsets of each batch: after every recovery faust

1. resumes the stream partitions, then awaits ``perform_seek`` (a round trip to the group
   coordinator), during which the fetch loop keeps handing records to the stream's queue;
2. then calls ``app.flow_control.resume()``, and mode's ``FlowControlEvent.resume``
   *clears every stream queue*, even though the flow was already running: the records
   just handed over are gone, and nothing fetches them again (faust's read offset and
   aiokafka's position are past them). The first of them is never acknowledged, so the
   partition's commits stop there until the next rebalance reads it all again, late.

The fix: ``resume`` clears the queues only when it actually ends a suspension. A
revocation suspends the flow and clears the queues itself; what is put into them while
suspended belongs to an old generation, which the stream skips anyway.

Second, faust's gap bookkeeping. When the fetch loop sees a record more than one offset
past the last it handed over, it records the offsets between as done (``_add_gap``: for
compacted topics and transaction markers), and the record itself too, before the stream
has decided it. Two things make that unsafe:

- ``perform_seek`` lowers faust's read offset to the committed offset while a batch
  fetched before it is still being handed over; the batch's next record then looks like
  a jump, and the offsets it "skips" are records already handed over and perhaps still
  queued. A commit then passes them, and a kill -9 before they are decided loses them.
- the record itself, marked done ahead of its decision, is open to the same loss; and
  as its offset also comes back through the ordinary acknowledgement, faust's list of
  done offsets holds it twice, which splits its runs of consecutive offsets, so commits
  then advance one offset at a time (seen in the same scenario).

So a gap never covers the record being handed over, nor offsets already handed over
before the latest ``perform_seek``.

Third, what a revocation leaves behind. faust forgets each revoked partition's read
offset, acknowledged offsets and gaps at the start of a revocation, then waits for the
stream to finish. Meanwhile the fetch loop, whose hand-off the suspension interrupted,
still records the interrupted record's offset as read, and the stream acknowledges
what it skips. When the partition comes back in the next generation, that stale read
offset (the interrupted record's) makes faust drop every record from the committed
offset up to it: they are never decided in that generation, and its commits
stop at the first of them (a kill -9 scenario run: ``requests[1]`` decided up to 8,297,
then from 8,450). So each partition's bookkeeping is forgotten again as it is assigned.
The loop can also record a read offset after the assignment: it commits between two
records of a fetch (``commit_every``), and that commit can wait out a whole rebalance;
the next record is an old generation's (the stream skips it), but its offset was
recorded as read in the new one (issue M's gate model, ``tests/streams/worker``). So a
record's read offset is forgotten when the generation changed while it was handed over.

Fourth, a gap right after what was committed or acknowledged. faust fills a gap only
below the highest acknowledged offset, so offsets that no record will ever follow (a
transactional producer's last commit marker) kept the partition's committed offset one
short of its end for ever. A gap that starts where the commit would stop is done too:
the commit moves to its end (gaps never cover a record handed over, above).

Fifth, such trailing gaps are never seen: faust records a gap only when a record comes
after it. aiokafka moves its position past the markers and aborted records it skips, so
the fetch is wrapped (in faust's consumer thread) to note each partition's position
before and after it and its last record; once the fetch was handed over whole (the read
offset is its last record, or for a partition it returned nothing of, the one before
its start; the same generation, the flow running), the offsets up to the new position
are a gap. Found with a transactional producer on the real stack: every partition's
commit stopped one short of its end (lag 1, both hand-offs), and the expiry gate waits
for other workers' partitions to be committed to their end offsets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from mode.utils.queues import FlowControlEvent

__all__ = ["BATCHED", "FETCHED", "Fetched", "close_trailing_gaps", "fetched_by", "install_flow_fix"]

_unfixed: dict[str, Any] = {}

_HANDED_OVER = "_jitwatch_handed_over"
"""Per consumer: {tp: last offset handed over when the latest perform_seek lowered it}."""

BATCHED = "_jitwatch_batch_handoff"
"""Attribute of the faust App holding the batch hand-off (:mod:`.handoff`), whose fetch
loop closes the trailing gaps itself, once a batch is queued."""

FETCHED = "_jitwatch_fetched"
"""Attribute of faust's consumer: the latest fetch's :class:`Fetched` per partition."""


class Fetched(NamedTuple):
    """One partition of a fetch, as faust's consumer thread saw it."""

    generation: int
    before: int | None
    """Its position when the fetch began."""
    after: int
    """Its position after it: past the last record and the markers after it."""
    last: int | None
    """The offset of the last record it returned (None: none)."""


def _resume(self: FlowControlEvent) -> None:
    ending_suspension = self._suspend.is_set()
    self._suspend.clear()
    self._resume.set()
    if ending_suspension:
        self.clear()


async def _seek_to_committed(self: ThreadDelegateConsumer) -> Any:
    committed = await _unfixed["seek_to_committed"](self)
    # perform_seek, the only caller, lowers the read offsets to these as soon as this
    # returns, with no await between: what they are now is what was handed over.
    setattr(self, _HANDED_OVER, {tp: offset for tp, offset in self._read_offset.items()
                                 if offset is not None})
    return committed


async def _add_gap(self: Consumer, tp: Any, offset_from: int, offset_to: int) -> None:
    # faust's offset_to is the record being handed over: not done yet.
    offset_to -= 1
    handed_over = getattr(self, _HANDED_OVER, {}).get(tp)
    if handed_over is not None:
        offset_from = max(offset_from, handed_over + 1)
    if offset_from <= offset_to:
        await _unfixed["add_gap"](self, tp, offset_from, offset_to)


def _new_offset(self: Consumer, tp: Any) -> int | None:
    offset: int | None = _unfixed["new_offset"](self, tp)
    start = offset if offset is not None else self._committed_offset[tp]
    if start is None:
        return offset
    gaps = self._gap[tp]
    ends = [interval.end for interval in gaps.at(start)]
    if not ends:
        return offset
    end: int = max(ends)
    gaps.chop(0, end)
    return end


async def _on_partitions_assigned(self: Consumer, assigned: Any, generation_id: int = 0) -> None:
    # A new generation (the eager protocol revoked every partition first): nothing recorded
    # for these partitions since the revocation belongs to it.
    for tp in assigned:
        self._read_offset.pop(tp, None)
        self._acked.pop(tp, None)
        self._acked_index.pop(tp, None)
        self._gap.pop(tp, None)
        self._committed_offset.pop(tp, None)
        getattr(self, _HANDED_OVER, {}).pop(tp, None)
    await _unfixed["on_partitions_assigned"](self, assigned, generation_id)


async def _fetch_records(self: AIOKafkaConsumerThread, consumer: Any, active_partitions: Any,
                         timeout: float | None = None,  # noqa: ASYNC109 - faust's
                         max_records: int | None = None) -> Any:
    # In faust's consumer thread, around its fetch (its rebalance callbacks run here too).
    before = _positions(consumer, active_partitions)
    records = await _unfixed["fetch_records"](self, consumer, active_partitions,
                                              timeout=timeout, max_records=max_records)
    generation = self.app.consumer_generation_id
    setattr(self.consumer, FETCHED, {
        tp: Fetched(generation, before.get(tp), after,
                    records[tp][-1].offset if records.get(tp) else None)
        for tp, after in _positions(consumer, active_partitions).items()})
    return records


def _positions(consumer: Any, partitions: Any) -> dict[Any, int]:
    subscription = consumer._fetcher._subscriptions.subscription  # noqa: SLF001 - aiokafka's
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return {}
    found = {}
    for tp in partitions or ():
        state = assignment.state_value(tp)
        if state is not None and state.has_valid_position:
            found[tp] = state.position
    return found


def fetched_by(consumer: Consumer) -> dict[Any, Fetched]:
    """The latest fetch's partitions, once: a later look (no fetch since) finds none."""
    fetched: dict[Any, Fetched] = getattr(consumer, FETCHED, None) or {}
    setattr(consumer, FETCHED, None)
    return fetched


def close_trailing_gaps(consumer: Consumer, fetched: dict[Any, Fetched]) -> None:
    """Record as a gap what the fetch skipped after its last record, on each acked
    partition it was handed over whole (see the fifth fix above)."""
    if not consumer.flow_active:
        return
    generation = consumer.app.consumer_generation_id
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    for tp, seen in fetched.items():
        handed = consumer._read_offset.get(tp)  # noqa: SLF001 - faust's bookkeeping
        whole = seen.last if seen.last is not None else \
            (seen.before - 1 if seen.before is not None else None)
        if seen.generation != generation or handed is None or handed != whole \
                or not acks_enabled_for(tp.topic):
            continue  # a seek, a rebalance or a hand-off that did not happen since
        start = max(handed + 1, consumer._committed_offset.get(tp) or 0)  # noqa: SLF001
        if start < seen.after:
            gaps = consumer._gap[tp]  # noqa: SLF001
            gaps.addi(start, seen.after)
            gaps.merge_overlaps()
            consumer._acked.setdefault(tp, [])  # noqa: SLF001 - faust's commits look at its keys


async def _getmany(self: Consumer, timeout: float) -> AsyncIterator[Any]:  # noqa: ASYNC109
    async for tp, message in _unfixed["getmany"](self, timeout):
        yield tp, message
        # faust's loop has just recorded the record as read, once its hand-off returned: if
        # a rebalance completed meanwhile (the loop's commit before it can wait one out),
        # that read offset is the old generation's (the third fix, after the assignment).
        if message.generation_id != self.app.consumer_generation_id:
            self._read_offset.pop(tp, None)
    # faust's own fetch loop asks for the next record only once it handed this one over.
    # (The batch hand-off looks at the fetch itself, once the batch is queued.)
    if getattr(self.app, BATCHED, None) is None:
        close_trailing_gaps(self, fetched_by(self))


def install_flow_fix() -> None:
    """Install the fixes on mode's ``FlowControlEvent`` and faust's ``Consumer``
    (idempotent)."""
    if _unfixed:
        return
    _unfixed.update(resume=FlowControlEvent.resume,
                    seek_to_committed=ThreadDelegateConsumer.seek_to_committed,
                    add_gap=Consumer._add_gap,  # noqa: SLF001 - the method being fixed
                    new_offset=Consumer._new_offset,  # noqa: SLF001 - as above
                    on_partitions_assigned=Consumer.on_partitions_assigned,
                    getmany=Consumer.getmany,
                    fetch_records=AIOKafkaConsumerThread._fetch_records)  # noqa: SLF001
    # mode and faust type these as methods of their own; these take the same calls.
    FlowControlEvent.resume = _resume  # type: ignore[method-assign]
    ThreadDelegateConsumer.seek_to_committed = _seek_to_committed  # type: ignore[method-assign]
    Consumer._add_gap = _add_gap  # type: ignore[method-assign]  # noqa: SLF001 - as above
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]  # noqa: SLF001 - as above
    Consumer.on_partitions_assigned = _on_partitions_assigned  # type: ignore[method-assign]
    Consumer.getmany = _getmany  # type: ignore[method-assign]
    AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]  # noqa: SLF001
