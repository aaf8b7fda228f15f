"""The order the cross-worker expiry gate relies on (issue I): a misplaced record's forward is
acknowledged by Kafka before the state of its batch is stored, and both before the record is
acknowledged to faust, whose offsets are committed only for acknowledged events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from importlib import resources
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from schemas.policy import parse_policy
from streams.engine.deadlines import DeadlineIndex, PartitionClock
from streams.engine.partitioner import partition_of
from streams.engine.plan import LOG_APPEND_TIME
from streams.settings import TopicSettings
from streams.worker.app import _handle_batch
from streams.worker.batching import in_batches
from streams.worker.send import RecordNotSent
from tests.factories import at, raw_request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
TOPICS = TopicSettings()
SUBJECTS = ("dev@example.com", "ops@example.com")


def _event(subject: str, partition: int, offset: int) -> Any:
    raw = raw_request(f"r-{offset}", [("db/orders", "dev")], subject=subject)
    message = SimpleNamespace(topic=TOPICS.topic_requests, partition=partition, offset=offset,
                              key=subject.encode(), value=orjson.dumps(raw),
                              timestamp=at(5).timestamp(), timestamp_type=LOG_APPEND_TIME,
                              headers=[])
    return SimpleNamespace(message=message)


class _Stream:
    """faust's stream as in_batches uses it: iteration, current_event, ack."""

    def __init__(self, events: Sequence[Any], log: list[str]) -> None:
        self.events, self.log = list(events), log
        self.current_event: Any = None
        self.enable_acks = True
        self.all_acked = asyncio.Event()
        self.acked = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.events:
            self.current_event = event
            yield event.message.value
        await self.all_acked.wait()  # then the stream stops, and in_batches returns

    async def ack(self, event: Any) -> bool:
        self.log.append(f"ack {event.message.partition}/{event.message.offset}")
        self.acked += 1
        if self.acked == len(self.events):
            self.all_acked.set()
        return True


def _sessions_empty(owned: set[int]) -> tuple[Any, Any, Any]:
    # The consumer's view: the sessions topic empty as of now, so requests do not wait.
    where = [(TOPICS.topic_sessions, number) for number in owned]
    return dict.fromkeys(where, 0), {}, dict.fromkeys(where, datetime.now(UTC))


async def test_a_forward_is_acknowledged_before_its_record_is() -> None:
    log: list[str] = []
    home = partition_of(SUBJECTS[0].encode(), TOPICS.topic_partitions)
    elsewhere = (home + 1) % TOPICS.topic_partitions
    events = [_event(SUBJECTS[0], elsewhere, 7),  # misplaced: forwarded to ``home``
              _event(SUBJECTS[1], partition_of(SUBJECTS[1].encode(),
                                               TOPICS.topic_partitions), 3)]

    async def send(plan: Any) -> list[Any]:
        await asyncio.sleep(0)  # the acknowledgement arrives later
        log.extend(f"acked {out.topic}" for out in plan.outbound)
        return [SimpleNamespace(partition=out.partition or 0, offset=number)
                for number, out in enumerate(plan.outbound)]

    class Access:
        def get(self, event: Any, key: bytes) -> None:
            return None

        async def put_all(self, writes: Sequence[Any]) -> None:
            log.append(f"store {len(writes)}")

    async def handle(batch: Sequence[Any]) -> None:
        await _handle_batch(batch, access=Access(), send=send,  # type: ignore[arg-type]
                            topics=TOPICS, max_event_bytes=65536, max_stored_bytes=1 << 20,
                            policy=POLICY, deadlines=DeadlineIndex(), clock=PartitionClock(),
                            max_record_bytes=1_000_000, view=_sessions_empty)

    stream = _Stream(events, log)
    await asyncio.wait_for(in_batches(stream, handle, max_events=10), 5)
    assert not stream.enable_acks, "faust's own acks are off: only in_batches acks"
    forward = log.index(f"acked {TOPICS.topic_repartition}")
    first_ack = next(number for number, line in enumerate(log) if line.startswith("ack "))
    store = next(number for number, line in enumerate(log) if line.startswith("store"))
    assert forward < store < first_ack, log
    assert f"ack {elsewhere}/7" in log


async def test_a_batch_whose_send_fails_is_logged_by_its_inputs_and_not_stored(
        caplog: pytest.LogCaptureFixture) -> None:
    events = [_event(SUBJECTS[0], 1, 40), _event(SUBJECTS[1], 1, 41)]
    stored: list[Any] = []

    async def send(plan: Any) -> list[Any]:
        raise RecordNotSent(1, AssertionError("Need at least one: key or value"))

    class Access:
        def get(self, event: Any, key: bytes) -> None:
            return None

        async def put_all(self, writes: Sequence[Any]) -> None:
            stored.append(writes)

    with pytest.raises(RecordNotSent):
        await _handle_batch(events, access=Access(), send=send,  # type: ignore[arg-type]
                            topics=TOPICS, max_event_bytes=65536, max_stored_bytes=1 << 20,
                            policy=POLICY, deadlines=DeadlineIndex(), clock=PartitionClock(),
                            max_record_bytes=1_000_000, view=_sessions_empty)
    assert stored == []
    [error] = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    requests = TOPICS.topic_requests
    assert f"for input {requests}[1]@40 refused" in error  # outbound 1: its second record
    assert f"inputs {requests}[1]@40..41" in error


async def test_held_events_lead_the_next_batch_and_are_acked_once_decided() -> None:
    # The cross-topic hold (streams/engine/hold.py): in_batches keeps what the handler
    # returns, unacknowledged, and offers it again, new events or not.
    log: list[str] = []
    events = [_event(SUBJECTS[0], 0, offset) for offset in (1, 2)]
    seen: list[list[int]] = []

    async def handle(batch: Sequence[Any]) -> list[Any]:
        seen.append([event.message.offset for event in batch])
        return [event for event in batch if event.message.offset == 2] if len(seen) < 3 \
            else []

    stream = _Stream(events, log)
    await asyncio.wait_for(in_batches(stream, handle, max_events=1), 5)
    assert seen[0] == [1]
    assert seen[1:] == [[2], [2]]  # the second offer came with nothing new
    assert log == ["ack 0/1", "ack 0/2"]


class _Tracked(list[Any]):
    """faust's set of unacknowledged messages, for messages that do not hash."""

    def discard(self, message: Any) -> None:
        if message in self:
            self.remove(message)


async def test_held_events_of_another_generation_are_dropped_unacknowledged() -> None:
    log: list[str] = []
    events = [_event(SUBJECTS[0], 0, offset) for offset in (1, 2)]
    for event in events:
        event.message.generation_id = 1
    stream = _Stream(events, log)
    unacked = _Tracked(event.message for event in events)
    stream.app = SimpleNamespace(consumer=SimpleNamespace(  # type: ignore[attr-defined]
        _unacked_messages=unacked), consumer_generation_id=1)
    seen: list[list[int]] = []

    async def handle(batch: Sequence[Any]) -> list[Any]:
        seen.append([event.message.offset for event in batch])
        if len(seen) == 1:
            stream.app.consumer_generation_id = 2  # type: ignore[attr-defined]
            return list(batch)  # offset 1 waits, then the group rebalances
        stream.all_acked.set()
        return []

    await asyncio.wait_for(in_batches(stream, handle, max_events=1), 5)
    assert seen == [[1], [2]]
    assert log == ["ack 0/2"]
    assert {message.offset for message in unacked} == {2}  # 1 untracked, never acked
