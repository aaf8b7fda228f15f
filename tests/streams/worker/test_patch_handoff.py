"""The batch hand-off's bookkeeping (issue M): what is taken is tracked until acked, so a
revocation waits for it; stale batches are dropped; an ack across a generation change is
dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from faust.transport.consumer import Consumer

from streams.worker.patches.handoff import BatchHandoff, Held


class _Message:
    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.tracked = False
        self.acked = False


class _Log:
    def dev(self, *args: Any) -> None: ...
    warning = info = dev


class _Diag:
    def set_flag(self, flag: str) -> None: ...
    unset_flag = set_flag


class _Consumer:
    """faust's consumer as the hand-off and ``wait_empty`` use it."""

    def __init__(self) -> None:
        self.diag = _Diag()
        self._unacked_messages: set[_Message] = set()
        self.acked: list[int] = []
        self.should_stop = False
        self.log = _Log()
        self.commits = 0

    def track_message(self, message: _Message) -> None:
        self._unacked_messages.add(message)

    def ack(self, message: _Message) -> bool:
        message.acked = True
        self._unacked_messages.discard(message)
        self.acked.append(message.offset)
        return True

    async def commit(self, **_: Any) -> None:
        self.commits += 1

    commit_and_end_transactions = commit

    async def _wait_for_ack(self, timeout: float) -> None:  # noqa: ASYNC109 - faust's
        await asyncio.sleep(0.01)

    def _clean_unacked_messages(self) -> None:
        self._unacked_messages -= {m for m in self._unacked_messages if m.acked}


class _Flow:
    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active


class _App:
    def __init__(self) -> None:
        self.consumer = _Consumer()
        self.consumer_generation_id = 1
        self.flow_control = _Flow()


@pytest.fixture
def app() -> _App:
    return _App()


def _batch(*offsets: int) -> list[_Message]:
    return [_Message(offset) for offset in offsets]


async def test_a_taken_batch_is_tracked_until_its_ack(app: _App) -> None:
    handoff = BatchHandoff(app)
    batch = _batch(5, 6, 7)
    await handoff.put(batch)
    generation, taken = await handoff.take()
    assert taken == batch
    assert app.consumer._unacked_messages == set(batch)
    assert handoff.ack(generation, taken)
    assert app.consumer.acked == [5, 6, 7]
    assert not app.consumer._unacked_messages


async def test_a_revocation_waits_for_the_batch_in_flight(app: _App) -> None:
    # faust's own wait_empty, as a revocation calls it, on the hand-off's bookkeeping.
    handoff = BatchHandoff(app)
    await handoff.put(_batch(1, 2))
    deciding = asyncio.Event()
    decided: list[int] = []

    async def handle(events: Sequence[Held]) -> None:
        deciding.set()
        await asyncio.sleep(0.2)
        decided.extend(event.message.offset for event in events)

    agent = asyncio.ensure_future(handoff.run(handle))
    await deciding.wait()
    await Consumer.wait_empty(app.consumer)  # type: ignore[arg-type]
    assert decided == [1, 2]  # wait_empty returned only once the batch was decided
    assert app.consumer.acked == [1, 2]
    agent.cancel()


async def test_an_ack_across_a_generation_change_is_dropped(app: _App) -> None:
    handoff = BatchHandoff(app)
    await handoff.put(_batch(3, 4))
    generation, taken = await handoff.take()
    app.consumer_generation_id = 2  # rebalanced between hand-off and ack
    assert not handoff.ack(generation, taken)
    assert app.consumer.acked == []
    assert not app.consumer._unacked_messages  # untracked: nothing waits for it


async def test_a_batch_from_an_older_generation_is_not_decided(app: _App) -> None:
    handoff = BatchHandoff(app)
    await handoff.put(_batch(10))
    app.consumer_generation_id = 2
    await handoff.put(_batch(20))
    _, taken = await handoff.take()
    assert [message.offset for message in taken] == [20]
    assert {m.offset for m in app.consumer._unacked_messages} == {20}


async def test_a_batch_taken_while_the_flow_is_suspended_is_dropped(app: _App) -> None:
    handoff = BatchHandoff(app)
    await handoff.put(_batch(10))
    app.flow_control.active = False
    taker = asyncio.ensure_future(handoff.take())
    await asyncio.sleep(0.01)
    assert not taker.done()
    assert not app.consumer._unacked_messages
    app.flow_control.active = True
    await handoff.put(_batch(11))
    _, taken = await taker
    assert [message.offset for message in taken] == [11]


async def test_held_records_lead_the_next_batch_and_are_acked_once_decided(app: _App
                                                                          ) -> None:
    # The cross-topic hold (streams/engine/hold.py): what the handler returns waits,
    # tracked and unacknowledged, and is offered again with the next batch.
    handoff = BatchHandoff(app)
    await handoff.put(_batch(1, 2))
    seen: list[list[int]] = []
    second = asyncio.Event()

    async def handle(events: Sequence[Held]) -> list[Held]:
        seen.append([event.message.offset for event in events])
        if len(seen) == 1:
            return [events[1]]  # offset 2 waits
        second.set()
        return []

    agent = asyncio.ensure_future(handoff.run(handle, recheck_s=10))
    await asyncio.sleep(0.05)
    assert app.consumer.acked == [1]
    assert {message.offset for message in app.consumer._unacked_messages} == {2}
    await handoff.put(_batch(3))
    await asyncio.wait_for(second.wait(), 1)
    assert seen == [[1, 2], [2, 3]]
    assert app.consumer.acked == [1, 2, 3]
    agent.cancel()


async def test_held_records_are_offered_again_when_nothing_comes(app: _App) -> None:
    handoff = BatchHandoff(app)
    await handoff.put(_batch(1))
    seen: list[list[int]] = []

    async def handle(events: Sequence[Held]) -> list[Held]:
        seen.append([event.message.offset for event in events])
        return list(events) if len(seen) < 3 else []

    agent = asyncio.ensure_future(handoff.run(handle, recheck_s=0.01))
    await asyncio.sleep(0.2)
    assert seen == [[1], [1], [1]]
    assert app.consumer.acked == [1]
    agent.cancel()


async def test_held_records_are_dropped_at_a_rebalance(app: _App) -> None:
    # Another generation's records are read again after the seek, as a stale batch is.
    handoff = BatchHandoff(app)
    await handoff.put(_batch(1))
    seen: list[list[int]] = []

    async def handle(events: Sequence[Held]) -> list[Held]:
        seen.append([event.message.offset for event in events])
        return list(events) if len(seen) == 1 else []

    agent = asyncio.ensure_future(handoff.run(handle, recheck_s=10))
    await asyncio.sleep(0.05)
    app.consumer_generation_id = 2
    await handoff.put(_batch(1), generation=2)
    await asyncio.sleep(0.05)
    assert seen == [[1], [1]]  # the new generation's copy alone
    assert app.consumer.acked == [1]
    assert not app.consumer._unacked_messages
    agent.cancel()
