"""send_all through BatchProducer (issue M): one aiokafka batch per topic-partition, each
record's offset its batch's base offset plus its place in the batch.

A fake aiokafka producer stands in for the broker: each topic-partition is a list (its
log), a queued batch lands at the end of it, and its future gives the base offset. The
real-broker checks (placement against aiokafka's partitioner, read-back order, headers,
offsets) are in tests/integration/test_batched_producer.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata, TopicPartition
from faust.types import TP

from streams.engine.partitioner import partition_of
from streams.engine.records import Outbound, Record
from streams.worker.send import BatchProducer, Outgoing, RecordNotSent, send_all, unsent
from streams.worker.table import BatchedTable
from tests.streams.worker.test_table import _Event, _Message, _Table

PARTITIONS = 4
NOW_MS = 1_700_000_000_000


@dataclass
class _Batch:
    """aiokafka's BatchBuilder as far as send_all uses it: full after ``capacity``."""

    capacity: int
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = \
        field(default_factory=list)
    closed: bool = False

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: None,
               headers: list[tuple[str, bytes]]) -> Any:
        assert timestamp is None
        if self.closed or len(self.records) >= self.capacity:
            self.closed = True
            return None
        self.records.append((key, value, headers))
        return SimpleNamespace(offset=len(self.records) - 1,
                               timestamp=NOW_MS + len(self.records))

    def close(self) -> None:
        self.closed = True


class _Aiokafka:
    """The AIOKafkaProducer under faust's: batches land in per-partition logs; their
    acknowledgements wait for ``ack`` (set by default)."""

    def __init__(self, capacity: int = 1000, *, log_append_time: bool = True) -> None:
        self.capacity = capacity
        self.logs: dict[tuple[str, int], list[tuple[bytes | None, bytes | None,
                                                     list[tuple[str, bytes]]]]] = {}
        self.queued: list[tuple[str, int, _Batch]] = []
        self.ack = asyncio.Event()
        self.ack.set()
        self.fail: Exception | None = None
        self.log_append_time = log_append_time
        self._partitioner: Any = DefaultPartitioner()
        self.keyless: list[str] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def _partition(self, topic: str, partition: None, key: bytes | None, value: Any,
                   serialized_key: bytes | None, serialized_value: Any) -> int:
        self.keyless.append(topic)
        return 2  # aiokafka picks at random among the available ones

    def _serialize(self, key: bytes | None, value: bytes | None, headers: Any) -> Any:
        if value is not None and len(value) > 10_000:
            raise ValueError("larger than max_request_size")
        return key, value

    def create_batch(self) -> _Batch:
        return _Batch(self.capacity)

    async def send_batch(self, batch: _Batch, topic: str, *,
                         partition: int) -> asyncio.Future[Any]:
        batch.close()
        log = self.logs.setdefault((topic, partition), [])
        base = len(log)
        log.extend(batch.records)
        self.queued.append((topic, partition, batch))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def acknowledge() -> None:
            await self.ack.wait()
            if self.fail is not None:
                future.set_exception(self.fail)
            else:
                future.set_result(RecordMetadata(
                    topic, partition, TopicPartition(topic, partition), base,
                    NOW_MS if self.log_append_time else -1,
                    1 if self.log_append_time else 0, 0))

        asyncio.get_running_loop().create_task(acknowledge())
        return future


def _producer(aio: _Aiokafka) -> BatchProducer:
    return BatchProducer(SimpleNamespace(_producer=aio))


def _where(sent: list[Any]) -> list[tuple[str, int, int]]:
    return [(meta.topic, meta.partition, meta.offset) for meta in sent]


KEYS = [b"alice", b"bob", "zoë".encode(), b"", b"carol", "ключ".encode()]


async def test_records_are_grouped_by_partition_and_offsets_follow_each_batch() -> None:
    aio = _Aiokafka()
    aio.logs[("decisions", partition_of(b"alice", PARTITIONS))] = [(b"x", b"x", [])] * 7
    records: list[Outgoing] = [("decisions", key, b"d-" + key, None, None) for key in KEYS]
    records += [("changelog", b"alice", b"s1", 3, None), ("changelog", b"bob", b"s2", 1, None),
                ("deadletter", None, b"bad", None, [("error", b"x")]),
                ("changelog", b"carol", b"s3", 3, None)]
    sent = await send_all(_producer(aio), records)
    # Keys where Kafka's default partitioner puts them; explicit partitions kept; a record
    # without a key where aiokafka's partitioner says.
    assert [meta.partition for meta in sent[:len(KEYS)]] == [
        DefaultPartitioner()(key, list(range(PARTITIONS)), []) for key in KEYS]
    assert [meta.partition for meta in sent[len(KEYS):]] == [3, 1, 2, 3]
    assert aio.keyless == ["deadletter"]
    # Each record's offset is where it is in its partition's log (after what was there).
    for (topic, partition, offset), (_, key, value, _, headers) in zip(
            _where(sent), records, strict=True):
        assert aio.logs[(topic, partition)][offset] == (key, value, headers or [])
    assert sent[0].offset == 7
    # One batch per topic-partition, records in input order.
    assert len(aio.queued) == len({(topic, partition) for topic, partition, _ in _where(sent)})
    assert [key for key, _, _ in aio.logs[("changelog", 3)]] == [b"alice", b"carol"]


async def test_a_batch_that_fills_is_sent_and_the_next_continues_the_offsets() -> None:
    aio = _Aiokafka(capacity=3)
    aio.logs[("changelog", 1)] = [(b"old", b"old", [])] * 5
    records: list[Outgoing] = [("changelog", b"k%d" % i, b"v%d" % i, 1, None)
                               for i in range(8)]
    records.insert(4, ("changelog", b"other", b"o", 0, None))
    sent = await send_all(_producer(aio), records)
    assert [len(batch.records) for topic, partition, batch in aio.queued
            if partition == 1] == [3, 3, 2]
    assert [meta.offset for meta in sent if meta.partition == 1] == list(range(5, 13))
    assert [value for _, value, _ in aio.logs[("changelog", 1)][5:]] == [
        b"v%d" % i for i in range(8)]
    assert _where(sent)[4] == ("changelog", 0, 0)


async def test_every_batch_is_queued_before_any_acknowledgement_is_awaited() -> None:
    aio = _Aiokafka(capacity=2)
    aio.ack.clear()
    records: list[Outgoing] = [("decisions", b"k%d" % i, b"v", i % 2, None) for i in range(7)]
    sending = asyncio.ensure_future(send_all(_producer(aio), records))
    await asyncio.sleep(0.01)
    assert not sending.done()
    assert sum(len(batch.records) for _, _, batch in aio.queued) == 7
    aio.ack.set()
    assert [meta.offset for meta in await sending] == [0, 0, 1, 1, 2, 2, 3]


async def test_batches_are_queued_a_round_at_a_time() -> None:
    # Every partition's first batch, then every second one: aiokafka's sender takes one
    # batch per partition into a request, so each round can travel in one request.
    aio = _Aiokafka(capacity=2)
    records: list[Outgoing] = [("changelog", b"k", b"v", 0, None)] * 5 + \
        [("changelog", b"k", b"v", 1, None)] * 3 + [("decisions", b"k", b"v", 0, None)]
    await send_all(_producer(aio), records)
    assert [(topic, partition) for topic, partition, _ in aio.queued] == [
        ("changelog", 0), ("changelog", 1), ("decisions", 0), ("changelog", 0),
        ("changelog", 1), ("changelog", 0)]


async def test_a_failed_batch_fails_send_all() -> None:
    # Its records are not acknowledged: the caller must not store state or ack the input.
    aio = _Aiokafka()
    aio.fail = KafkaTimeoutError()
    with pytest.raises(KafkaTimeoutError):
        await send_all(_producer(aio), [("decisions", b"k", b"v", None, None),
                                        ("changelog", b"k", b"s", 0, None)])


async def test_a_refused_record_fails_before_anything_is_acknowledged() -> None:
    aio = _Aiokafka()
    with pytest.raises(RecordNotSent) as refused:
        await send_all(_producer(aio), [("decisions", b"k", b"v", None, None),
                                        ("decisions", b"k", b"v" * 20_000, None, None)])
    assert refused.value.index == 1
    assert isinstance(refused.value.__cause__, ValueError)
    assert "max_request_size" in str(refused.value)
    with pytest.raises(RecordNotSent) as refused:  # as aiokafka's send: no key and no value
        await send_all(_producer(aio), [("deadletter", None, None, None, [])])
    assert isinstance(refused.value.__cause__, AssertionError)


async def test_faust_s_per_record_path_names_the_refused_record() -> None:
    class Refusing:
        async def send(self, topic: str, key: bytes | None, value: bytes | None,
                       **_: Any) -> Any:
            assert not (value is None and key is None), "Need at least one: key or value"
            return asyncio.get_running_loop().create_future()

    with pytest.raises(RecordNotSent) as refused:
        await send_all(Refusing(), [("decisions", b"k", b"v", None, None),
                                    ("deadletter", None, None, None, None)])
    assert refused.value.index == 1
    records = [Record("jit.requests", 2, 40, b"k", b"{}"), Record("jit.requests", 2, 41,
                                                                   None, None),
               Record("jit.sessions", 0, 7, b"k", b"{}")]
    outbound = [Outbound("decisions", b"k", b"v", source=0),
                Outbound("deadletter", None, None, source=1)]
    said = unsent(refused.value, records, outbound)
    assert said.startswith("deadletter record (key 0 bytes, value null bytes) for input "
                           "jit.requests[2]@41 refused; ")
    assert "inputs jit.requests[2]@40..41, jit.sessions[0]@7..7" in said


async def test_another_partitioner_is_asked_for_every_record() -> None:
    aio = _Aiokafka()
    aio._partitioner = object()
    sent = await send_all(_producer(aio), [("decisions", b"alice", b"v", None, None),
                                           ("decisions", b"bob", b"v", 1, None)])
    assert [meta.partition for meta in sent] == [2, 1]
    assert aio.keyless == ["decisions"]


@pytest.mark.parametrize("log_append_time", [True, False])
async def test_timestamps_are_the_brokers_or_each_records_own(log_append_time: bool) -> None:
    aio = _Aiokafka(log_append_time=log_append_time)
    sent = await send_all(_producer(aio), [("decisions", b"k", b"v", 0, None),
                                           ("decisions", b"l", b"v", 0, None)])
    if log_append_time:
        assert [(meta.timestamp, meta.timestamp_type) for meta in sent] == [(NOW_MS, 1)] * 2
    else:
        assert [(meta.timestamp, meta.timestamp_type) for meta in sent] == [
            (NOW_MS + 1, 0), (NOW_MS + 2, 0)]


async def test_a_stopped_producer_raises() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await send_all(BatchProducer(SimpleNamespace(_producer=None)),
                       [("decisions", b"k", b"v", 0, None)])


async def test_the_tables_persisted_offset_is_the_last_record_of_its_partition() -> None:
    aio = _Aiokafka(capacity=4)
    aio.logs[("app-grants-changelog", 2)] = [(b"old", b"old", [])] * 3
    table = _Table()
    writes = [(_Event(_Message(2 if i % 3 else 0)), b"k%d" % i, b"v%d" % i) for i in range(20)]
    await BatchedTable(table, _producer(aio)).put_all(writes)  # type: ignore[arg-type]
    assert table.data.persisted == {
        TP("app-grants-changelog", partition): len(aio.logs[("app-grants-changelog",
                                                             partition)]) - 1
        for partition in (0, 2)}
    assert table.data.persisted[TP("app-grants-changelog", 2)] == 3 + 13 - 1


@pytest.mark.parametrize("key_bytes", [0, 5, 2048, 400_000])
def test_a_dead_letter_the_producer_would_refuse_is_never_left_whole(key_bytes: int) -> None:
    # The planner bounds dead letters by the producer's max_request_size without aiokafka
    # (streams.engine.codec): its estimate must never be below aiokafka's own check.
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    from streams.engine.codec import dead_letter_headers
    from streams.engine.dead_letters import dead_letter_record

    key = b"k" * key_bytes or None
    for value_bytes in (1, 300, 70_000, 999_000):
        headers = dead_letter_headers("jit.requests", 11, 123_456, "oversized", "é" * 2000)
        value = b"v" * value_bytes
        refused = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers) - 1
        assert dead_letter_record(key, value, list(headers), refused) != (key, value)
