"""fast_wait_first: faust's wait_first without four tasks per record, same outcomes."""

from __future__ import annotations

import asyncio

import pytest
from mode import Service

from streams.handoff_fix import fast_wait_first


class _Fetcher(Service):
    """Any mode service: the consumer's wait_first is Service.wait_first."""


async def _returns(value: str) -> str:
    return value


async def _waits_for(event: asyncio.Event, value: str, log: list[str]) -> str:
    try:
        await event.wait()
        await asyncio.sleep(0)  # a second suspension: the rest runs as a task throughout
        return value
    except asyncio.CancelledError:
        log.append("cancelled")
        raise


async def test_a_callback_that_does_not_wait_wins_inline() -> None:
    service = _Fetcher()
    suspended = asyncio.Event()
    other = suspended.wait()
    result = await fast_wait_first(service, _returns("handed"), other)
    assert result.results == ["handed"]
    assert not result.stopped
    assert other.cr_frame is None  # closed without running: no "never awaited" warning


async def test_a_callback_that_waits_finishes_as_a_task() -> None:
    service, room, suspended, log = _Fetcher(), asyncio.Event(), asyncio.Event(), []
    waiting = asyncio.ensure_future(
        fast_wait_first(service, _waits_for(room, "handed", log), suspended.wait()))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    room.set()
    result = await waiting
    assert result.results == ["handed"]
    assert log == []


async def test_a_suspension_interrupts_a_waiting_callback() -> None:
    # What faust relies on at a rebalance: a hand-off stuck on a full queue gives way.
    service, room, suspended, log = _Fetcher(), asyncio.Event(), asyncio.Event(), []
    waiting = asyncio.ensure_future(
        fast_wait_first(service, _waits_for(room, "handed", log), suspended.wait()))
    await asyncio.sleep(0.01)
    suspended.set()
    result = await waiting
    assert result.results == [True]  # the suspension's wait won
    await asyncio.sleep(0)
    assert log == ["cancelled"]  # and the callback was cancelled inside, as with faust


async def test_a_failing_callback_raises_to_the_fetch_loop() -> None:
    async def fails() -> None:
        raise ValueError("bad record")

    suspended = asyncio.Event()
    with pytest.raises(ValueError, match="bad record"):
        await fast_wait_first(_Fetcher(), fails(), suspended.wait())
