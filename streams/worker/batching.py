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
sent and its state stored: at least once, as with ``take_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust.types import EventT

__all__ = ["in_batches"]


async def in_batches(
    stream: Any,  # a faust.Stream; faust types its iteration loosely
    handle: Callable[[Sequence[EventT[Any]]], Awaitable[None]],
    max_events: int,
) -> None:
    """Call ``handle`` with every batch of at most ``max_events`` events, in stream order,
    until the stream stops; ack each batch after its handler returned."""
    buffer: list[EventT[Any]] = []
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
            done, _ = await asyncio.wait({waiter, filler}, return_when=asyncio.FIRST_COMPLETED)
            if filler in done:
                waiter.cancel()
                filler.result()  # re-raise what stopped the stream
                return
            batch = buffer[:max_events]
            del buffer[:max_events]
            if not buffer:
                arrived.clear()
            room.set()
            await handle(batch)
            for event in batch:
                await stream.ack(event)
    finally:
        filler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await filler
