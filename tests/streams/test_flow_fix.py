"""flow_fix: a resumed flow keeps what its streams hold; a seek ends the batch before it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from streams import flow_fix


@pytest.fixture(autouse=True)
def _installed() -> None:
    flow_fix.install_flow_fix()


def _queue_with(flow: FlowControlEvent, *items: str) -> FlowControlQueue[str]:
    queue: FlowControlQueue[str] = FlowControlQueue(maxsize=10, flow_control=flow,
                                                    clear_on_resume=True)
    for item in items:
        queue.put_nowait(item)
    return queue


async def test_resuming_a_running_flow_keeps_what_the_stream_was_handed() -> None:
    # faust resumes the flow once more after recovery's seek; records handed over
    # meanwhile were being thrown away.
    flow = FlowControlEvent()
    flow.resume()
    queue = _queue_with(flow, "handed before the last resume")
    flow.resume()
    assert queue.qsize() == 1
    assert flow.is_active()


async def test_resuming_after_a_suspension_still_clears() -> None:
    flow = FlowControlEvent()
    flow.resume()
    queue = _queue_with(flow, "from before the revocation")
    flow.suspend()
    assert not flow.is_active()
    flow.resume()
    assert queue.qsize() == 0
    assert flow.is_active()


class _Consumer:
    """Stands for faust's consumer: the fix keeps its count of seeks on it."""


async def _batch(consumer: _Consumer, seek_after: int, fetched: list[int],
                 closed: list[bool]) -> AsyncGenerator[int, None]:
    try:
        for number in range(5):
            if number == seek_after:
                flow_fix._count_seek(consumer)
            fetched.append(number)
            yield number
    finally:
        closed.append(True)


async def test_a_batch_is_not_handed_over_past_a_seek() -> None:
    consumer, fetched, closed = _Consumer(), [], []  # type: ignore[var-annotated]
    handed = [item async for item in flow_fix._until_seek(
        consumer, _batch(consumer, 2, fetched, closed))]
    assert handed == [0, 1]  # 2 onwards is read again from the seek's position
    assert closed == [True]


async def test_a_batch_without_a_seek_is_handed_over_whole() -> None:
    consumer, fetched, closed = _Consumer(), [], []  # type: ignore[var-annotated]
    handed = [item async for item in flow_fix._until_seek(
        consumer, _batch(consumer, 99, fetched, closed))]
    assert handed == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("method", "args"), [
    ("perform_seek", ()), ("seek", ("tp", 7)), ("seek_wait", ({"tp": 7},))])
async def test_every_seek_is_counted_once_it_is_done(
        monkeypatch: pytest.MonkeyPatch, method: str, args: tuple[Any, ...]) -> None:
    consumer = _Consumer()
    seen: list[int] = []

    async def unfixed(self: Any, *_: Any) -> None:
        await asyncio.sleep(0)
        seen.append(getattr(self, flow_fix._SEEKS, 0))  # not yet counted while it runs

    monkeypatch.setitem(flow_fix._unfixed, method, unfixed)
    owner = ThreadDelegateConsumer if method == "seek_wait" else Consumer
    await getattr(owner, method)(consumer, *args)
    assert seen == [0]
    assert getattr(consumer, flow_fix._SEEKS) == 1


def test_installing_twice_keeps_faust_s_originals() -> None:
    original = flow_fix._unfixed["getmany"]
    flow_fix.install_flow_fix()
    assert flow_fix._unfixed["getmany"] is original
    assert Consumer.getmany is flow_fix._getmany
