"""Natural batching over a faust stream: events keep arriving while a batch is decided.

faust's ``Stream.take_events`` stops buffering while its caller works on a batch and then
waits ``within`` seconds to fill the next one, so a worker that spends a few milliseconds
per batch (sending verdicts, awaiting their acks, storing state) gets small batches and
spends half its time waiting. Here a background task keeps reading the stream into a
buffer while the caller decides; the caller takes whatever has arrived the moment it is
free. Under light load a batch is one event (lowest latency); under heavy load batches grow
to what arrived during the previous one (fewest round trips).

Events are acknowledged only after the caller's handler returned for their batch (the
stream's automatic acks are off), so an offset is committed only once its verdicts were
sent and its state stored: at least once, as with ``take_events``. Events the handler
returns were not decided (the cross-topic hold, :mod:`streams.engine.hold`): they lead the
next batch, unacknowledged until then, and while any wait the handler is called again every
``HOLD_RECHECK_S`` even when nothing arrives (a fetch may have caught the other topic up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust.types import EventT

__all__ = ["HOLD_RECHECK_S", "in_batches", "in_slices"]

HOLD_RECHECK_S = 0.05
"""How often held events are offered again when nothing new arrives."""


async def in_batches(
    stream: Any,  # a faust.Stream; faust types its iteration loosely
    handle: Callable[[Sequence[EventT[Any]]], Awaitable[Sequence[EventT[Any]] | None]],
    max_events: int,
) -> None:
    """Call ``handle`` with every batch of at most ``max_events`` new events (after the
    ones it held back), in stream order, until the stream stops; ack each batch's events
    after its handler returned, except those it returned (held for the next batch)."""
    buffer: list[EventT[Any]] = []
    held: list[EventT[Any]] = []
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()
    stream.enable_acks = False  # acked below, after the batch is handled

    async def fill() -> None:
        async for _ in stream:  # the value is the raw bytes; the event holds coordinates
            event = stream.current_event
            if event is None:  # pragma: no cover - faust sets it for every channel message
                continue
            buffer.append(event)
            arrived.set()
            if len(buffer) >= max_events:
                room.clear()
                await room.wait()  # back-pressure: faust pauses fetching when its queue fills

    filler = asyncio.ensure_future(fill())
    try:
        while True:
            waiter = asyncio.ensure_future(arrived.wait())
            done, _ = await asyncio.wait({waiter, filler}, return_when=asyncio.FIRST_COMPLETED,
                                         timeout=HOLD_RECHECK_S if held else None)
            if waiter not in done:
                waiter.cancel()
            if filler in done:
                filler.result()  # re-raise what stopped the stream
                return
            if held and _generation(held[0]) != _generation(stream):
                # Rebalanced meanwhile: faust's stream skips another generation's events
                # (the seek after the rebalance reads them again), and so does this:
                # untracked, never acknowledged (that would commit past them).
                unacked: Any = getattr(getattr(stream.app, "consumer", None),
                                       "_unacked_messages", set())
                for event in held:
                    unacked.discard(event.message)
                held = []
            batch = held + buffer[:max_events]
            del buffer[:max_events]
            if not buffer:
                arrived.clear()
            room.set()
            held = list(await handle(batch) or ())
            waiting = {id(event) for event in held}
            for event in batch:
                if id(event) not in waiting:
                    await stream.ack(event)
    finally:
        filler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await filler


def _generation(item: Any) -> Any:
    # An event's generation (its message's), or a stream's (its app consumer's): faust's;
    # None where there is none (tests' stand-ins).
    message = getattr(item, "message", None)
    if message is not None:
        return getattr(message, "generation_id", None)
    return getattr(getattr(item, "app", None), "consumer_generation_id", None)


async def in_slices(events: Sequence[Any], handle: Callable[[Sequence[Any]], Any],
                    most: int) -> list[Any]:
    """Call ``handle`` on ``events`` a slice of at most ``most`` at a time (the batch
    hand-off's fetched batch can hold more than ``batch_max`` records; it is acknowledged
    once, after its last slice); returns what the slices held back, in order."""
    held: list[Any] = []
    for start in range(0, len(events), most):
        held += await handle(events[start:start + most]) or ()
    return held
