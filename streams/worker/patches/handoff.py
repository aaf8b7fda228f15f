"""Batch hand-off (issue M, ``WorkerSettings.batch_handoff``, on by default).

faust passes every fetched record on through ``wait_first(callback(message),
suspend_flow.wait())`` and the conductor, the stream queue and the stream's iteration:
about half of the worker's CPU per event (issue 24's profile). With the setting on, the
fetch loop hands each fetched batch to the agent in one step, through a small queue of
its own (:class:`BatchHandoff`), and the agent acknowledges per batch. Everything else
stays faust's: the App, the agent (its topics subscribe the consumer), the changelog
table, RocksDB, recovery, rebalances and the commit of acknowledged offsets.

The rules that keep an offset from being committed before its verdicts and state:

- the fetch loop keeps faust's read-offset filter and gap bookkeeping per record (with
  :mod:`streams.worker.patches.flow`'s fixes), but records a batch's offsets as read only
  once the batch is in the queue: a hand-off interrupted by a suspension hands nothing;
- a batch taken from the queue is dropped (not decided, not acknowledged; the seek after
  the rebalance or recovery reads it again) when its generation is not the consumer's or
  the flow is suspended, as faust's stream skips such events;
- a taken batch's records are tracked in the consumer's unacknowledged set with no await
  between the check and the tracking, so a revocation (``wait_empty``) waits for it;
- a batch is acknowledged only after its handler returned (verdicts acknowledged by Kafka,
  state stored), and only if the generation is still the one it was taken in; otherwise
  the acknowledgement is dropped and the records are only untracked;
- a batch is handed over only in the generation it was fetched in (a rebalance can
  complete while the loop awaits a commit between the two), and only then are its
  offsets recorded as read;
- the offsets a fetch skipped after its last record (markers, aborted records) become
  a gap only once the whole fetch was handed over (:mod:`streams.worker.patches.flow`,
  fifth fix), so the commit reaches the end of what was fetched.

It became the default once the kill -9 gate of issue 24 held: ten consecutive full-size
runs (100k events, 20 kills, two workers) green on the final code (bench/HISTORY.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

from faust.transport.consumer import Consumer

from streams.worker.patches.flow import BATCHED, close_trailing_gaps, fetched_by

__all__ = ["BatchHandoff", "Held", "install_batch_handoff"]

HANDOFF_ATTRIBUTE = BATCHED
"""Attribute of the faust App holding its :class:`BatchHandoff` (absent: faust's loop)."""

QUEUED_BATCHES = 2
"""Fetched batches queued ahead of the agent: the next is ready while one is decided, and
a revocation has little to skip."""

_unfixed: dict[str, Any] = {}


class Held:
    """A fetched record as the worker's batch handler reads it (``event.message``), without
    the faust Event built per record on the stream path."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, message: Any) -> None:
        self.message = message


class BatchHandoff:
    """The queue between the fetch loop and the agent, and the per-batch bookkeeping."""

    def __init__(self, app: Any, topics: frozenset[str] = frozenset(),
                 maxsize: int = QUEUED_BATCHES) -> None:
        self._app = app
        self.topics = topics
        """The agent's input topics: only their records are batched. Others (the table's
        changelog, read by recovery and standbys) go through faust's conductor as before."""
        self._queue: asyncio.Queue[tuple[int, list[Any]]] = asyncio.Queue(maxsize)

    async def put(self, messages: list[Any], generation: int | None = None) -> None:
        """Called by the fetch loop: queue a fetched batch with the generation it was
        fetched in (default: the current one; waits while the queue is full: faust's
        back-pressure)."""
        if generation is None:
            generation = self._app.consumer_generation_id
        await self._queue.put((generation, messages))

    async def take(self) -> tuple[int, list[Any]]:
        """The next batch the agent may decide, tracked as unacknowledged; stale batches
        (another generation, or taken while the flow is suspended) are dropped."""
        while True:
            generation, messages = await self._queue.get()
            # No await from this check to the tracking below: a revocation either ran
            # before it (the batch is dropped) or waits for the batch's acknowledgement.
            if generation != self._app.consumer_generation_id \
                    or not self._app.flow_control.is_active():
                continue
            track = self._app.consumer.track_message
            for message in messages:
                message.tracked = True
                track(message)
            return generation, messages

    def ack(self, generation: int, messages: Sequence[Any]) -> bool:
        """Acknowledge a decided batch; dropped (False) if the generation changed since it
        was taken, in which case the records are only untracked."""
        consumer = self._app.consumer
        if generation != self._app.consumer_generation_id:
            self.drop(messages)
            return False
        ack = consumer.ack
        for message in messages:
            ack(message)
        return True

    def drop(self, messages: Sequence[Any]) -> None:
        """Untrack taken records without acknowledging them (another generation's)."""
        unacked = self._app.consumer._unacked_messages  # noqa: SLF001 - faust's own set
        for message in messages:
            unacked.discard(message)

    async def run(self, handle: Callable[[Sequence[Any]], Awaitable[Sequence[Any] | None]],
                  recheck_s: float = 0.05) -> None:
        """The agent's loop: take a batch, decide it, acknowledge it; forever.

        What ``handle`` returns was not decided (the cross-topic hold,
        :mod:`streams.engine.hold`): it stays tracked, unacknowledged, and leads the next
        batch, or is offered again after ``recheck_s`` when none comes; a rebalance drops
        it (untracked, as a stale batch: the seek after it reads the records again)."""
        held: list[Held] = []
        since = self._app.consumer_generation_id
        while True:
            taken = await (self._take_within(recheck_s) if held else self.take())
            generation, messages = (since, []) if taken is None else taken
            if generation != since or since != self._app.consumer_generation_id:
                self.drop([item.message for item in held])
                held = []
            batch = held + [Held(message) for message in messages]
            if not batch:
                continue
            held, since = list(await handle(batch) or ()), generation
            waiting = {id(item) for item in held}
            self.ack(generation, [item.message for item in batch if id(item) not in waiting])

    async def _take_within(self, seconds: float) -> tuple[int, list[Any]] | None:
        """:meth:`take`, or None after ``seconds``. Cancelling it is safe: an
        ``asyncio.Queue.get`` cancelled leaves its item queued, and nothing is tracked
        before that get returns; a take that finished first is used, not lost."""
        taking = asyncio.ensure_future(self.take())
        try:
            await asyncio.wait({taking}, timeout=seconds)
        finally:
            if not taking.done():
                taking.cancel()
                await asyncio.wait({taking})
        return None if taking.cancelled() else taking.result()


async def _drain_messages(self: Consumer, fetcher: Any) -> None:
    handoff: BatchHandoff | None = getattr(self.app, HANDOFF_ATTRIBUTE, None)
    if handoff is None:
        await _unfixed["drain_messages"](self, fetcher)
        return
    # faust's loop (faust/transport/consumer.py, Consumer._drain_messages) with one hand-off
    # per fetched batch instead of one per record; its error handling is kept as it is.
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set  # noqa: SLF001 - as faust does
    read_offset = self._read_offset
    acks_enabled_for = self.app.topics.acks_enabled_for
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            ait = cast(AsyncIterator[tuple[Any, Any]], self.getmany(timeout=1.0))
            await self.sleep(0)
            if self.should_stop:
                continue
            batch: list[Any] = []
            last: dict[Any, int] = {}  # read offsets of this batch, recorded once queued
            async for tp, message in ait:
                offset = message.offset
                r_offset = last.get(tp, read_offset.get(tp))
                if r_offset is not None and offset < r_offset:
                    continue  # faust's "DROPPED MESSAGE": already handed over
                if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                if message.topic not in handoff.topics:
                    # Changelog records (recovery, standbys): faust's per-record path.
                    await self.wait_first(self.callback(message), self.suspend_flow.wait())
                    read_offset[tp] = offset
                    continue
                batch.append(message)
                last[tp] = offset
            fetched = fetched_by(self)
            if not batch:
                close_trailing_gaps(self, fetched)
                continue
            # getmany hands on records of one generation only (it stops when it changes),
            # stamped with it as it makes each message.
            fetched_in = batch[0].generation_id
            commit_every = self._commit_every
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                await self.commit()
            # A rebalance during an await above (the commit can wait out a whole one)
            # makes the batch another generation's: not handed over, and its offsets not
            # recorded as read (they would make the new generation drop what its seek reads
            # again below them). Interrupted by a suspension: nothing was handed over
            # either; the seek that follows the rebalance or recovery reads it again.
            if fetched_in == self.app.consumer_generation_id and await _handed_over(
                    handoff.put(batch, fetched_in), self.suspend_flow.wait()) \
                    and fetched_in == self.app.consumer_generation_id:
                read_offset.update(last)
                close_trailing_gaps(self, fetched)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            return
        raise


async def _handed_over(put: Awaitable[None], suspended: Awaitable[Any]) -> bool:
    """Run ``put`` until it is done or the flow is suspended; True if it was done (a batch
    queued even as the flow stopped counts as handed over: its offsets are read)."""
    putting = asyncio.ensure_future(put)
    waiting = asyncio.ensure_future(suspended)
    try:
        await asyncio.wait({putting, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        if not putting.done():
            putting.cancel()
    return putting.done() and not putting.cancelled() and putting.exception() is None


def install_batch_handoff(app: Any, topics: frozenset[str]) -> BatchHandoff:
    """Give ``app``'s fetch loop a batch hand-off of the records of ``topics`` (the agent's
    inputs); faust's loop stays for any other app, and other topics keep faust's path."""
    if not _unfixed:
        _unfixed["drain_messages"] = Consumer._drain_messages  # noqa: SLF001
        Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]  # noqa: SLF001
    handoff = BatchHandoff(app, topics)
    setattr(app, HANDOFF_ATTRIBUTE, handoff)
    return handoff
