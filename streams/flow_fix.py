"""A fix to faust's flow control, so records handed to a stream survive a recovery's end.

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
"""

from __future__ import annotations

from typing import Any

from mode.utils.queues import FlowControlEvent

__all__ = ["install_flow_fix"]

_unfixed: dict[str, Any] = {}


def _resume(self: FlowControlEvent) -> None:
    ending_suspension = self._suspend.is_set()
    self._suspend.clear()
    self._resume.set()
    if ending_suspension:
        self.clear()


def install_flow_fix() -> None:
    """Install the fix on mode's ``FlowControlEvent``, which faust's app uses (idempotent)."""
    if _unfixed:
        return
    _unfixed["resume"] = FlowControlEvent.resume
    # mode types resume as a method of its own; this one takes the same calls.
    FlowControlEvent.resume = _resume  # type: ignore[method-assign]
