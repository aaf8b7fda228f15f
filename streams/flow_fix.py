"""Two fixes to faust's rebalance path, so no record handed to the stream is lost.

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

Also, a fetched batch that was being handed over when a seek (``perform_seek``, ``seek``,
``seek_wait``) moved the position goes on being handed over afterwards: each record raises
faust's read offset again, records from the new position below it are dropped, and
faust's gap bookkeeping marks the offsets between the seek and the stale record as done,
so a commit can pass records still waiting in the queue.

The fixes: ``resume`` clears the queues only when it actually ends a suspension (a
revocation suspended and cleared them; what was put since belongs to an old generation),
and the fetch loop stops handing over a batch fetched before the latest seek (the records
are fetched again from the new position).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from mode.utils.queues import FlowControlEvent

__all__ = ["install_flow_fix"]

_SEEKS = "_jitwatch_seeks"  # per consumer: seeks completed, to tell stale batches apart

_unfixed: dict[str, Any] = {}


def _resume(self: FlowControlEvent) -> None:
    ending_suspension = self._suspend.is_set()
    self._suspend.clear()
    self._resume.set()
    if ending_suspension:
        self.clear()


def _getmany(self: Consumer, timeout: float) -> AsyncGenerator[tuple[Any, Any], None]:
    return _until_seek(self, _unfixed["getmany"](self, timeout))


async def _until_seek(consumer: Any,
                      batch: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    # A fetched batch, handed over only while no seek has completed since it was fetched;
    # the rest is fetched again from the new position.
    seeks = getattr(consumer, _SEEKS, 0)
    try:
        async for item in batch:
            if getattr(consumer, _SEEKS, 0) != seeks:
                return
            yield item
    finally:
        await batch.aclose()


def _count_seek(consumer: Any) -> None:
    # Called with no await since the seek's read-offset update: nothing stale slips in.
    setattr(consumer, _SEEKS, getattr(consumer, _SEEKS, 0) + 1)


async def _perform_seek(self: Consumer) -> None:
    await _unfixed["perform_seek"](self)
    _count_seek(self)


async def _seek(self: Consumer, partition: Any, offset: int) -> None:
    await _unfixed["seek"](self, partition, offset)
    _count_seek(self)


async def _seek_wait(self: ThreadDelegateConsumer, partitions: Any) -> None:
    await _unfixed["seek_wait"](self, partitions)
    _count_seek(self)


def install_flow_fix() -> None:
    """Install both fixes on faust's classes (idempotent)."""
    if _unfixed:
        return
    _unfixed.update(resume=FlowControlEvent.resume, getmany=Consumer.getmany,
                    perform_seek=Consumer.perform_seek, seek=Consumer.seek,
                    seek_wait=ThreadDelegateConsumer.seek_wait)
    # mode and faust type these as methods of their own; these take the same calls.
    FlowControlEvent.resume = _resume  # type: ignore[method-assign]
    Consumer.getmany = _getmany  # type: ignore[method-assign]
    Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
    Consumer.seek = _seek  # type: ignore[method-assign]
    ThreadDelegateConsumer.seek_wait = _seek_wait  # type: ignore[method-assign]
