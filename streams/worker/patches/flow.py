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
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from mode.utils.queues import FlowControlEvent

__all__ = ["install_flow_fix"]

_unfixed: dict[str, Any] = {}

_HANDED_OVER = "_jitwatch_handed_over"
"""Per consumer: {tp: last offset handed over when the latest perform_seek lowered it}."""


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


def install_flow_fix() -> None:
    """Install the fixes on mode's ``FlowControlEvent`` and faust's ``Consumer``
    (idempotent)."""
    if _unfixed:
        return
    _unfixed.update(resume=FlowControlEvent.resume,
                    seek_to_committed=ThreadDelegateConsumer.seek_to_committed,
                    add_gap=Consumer._add_gap,  # noqa: SLF001 - the method being fixed
                    on_partitions_assigned=Consumer.on_partitions_assigned)
    # mode and faust type these as methods of their own; these take the same calls.
    FlowControlEvent.resume = _resume  # type: ignore[method-assign]
    ThreadDelegateConsumer.seek_to_committed = _seek_to_committed  # type: ignore[method-assign]
    Consumer._add_gap = _add_gap  # type: ignore[method-assign]  # noqa: SLF001 - as above
    Consumer.on_partitions_assigned = _on_partitions_assigned  # type: ignore[method-assign]
