"""The batched producer of issue M (``BatchProducer``, on with ``JITWATCH_BATCH_HANDOFF``)
on the real broker, against faust's per-record path it replaces.

Issue 24's gate: keys land on the partitions they did before; order within a partition and
dead-letter headers are unchanged; the offsets ``send_all`` returns are the records' offsets
as a consumer reads them back, across batches that fill, so the changelog's persisted
offset (RocksDB's offset key after ``put_all``) is the partition's last changelog record.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from streams.engine.codec import dead_letter_headers
from streams.worker.send import BatchProducer, Outgoing, send_all
from streams.worker.table import BatchedTable
from tests.integration.conftest import BOOTSTRAP, Stack, read_topic

pytestmark = [pytest.mark.integration]

BATCH_BYTES = 16_384
"""faust's (and aiokafka's) default producer batch size: a batch fills past it."""


@pytest.fixture
async def faust_app(stack: Stack, tmp_path: Path) -> AsyncIterator[faust.App]:
    """A faust app whose producer is started, as the worker's is (acks from all replicas)."""
    app = faust.App(f"jitwatch-bp-{uuid.uuid4().hex[:8]}", broker=f"kafka://{BOOTSTRAP}",
                    producer_acks=-1, store="rocksdb://", datadir=str(tmp_path / "data"))
    await app.producer.start()
    try:
        yield app
    finally:
        await app.producer.stop()


async def _create(topics: dict[str, int], **config: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)
                                   for name, partitions in topics.items()])
    finally:
        await admin.close()


def _topic(stack: Stack, name: str) -> str:
    return f"it-{stack.run}.bp-{name}-{uuid.uuid4().hex[:6]}"


async def _read_back(topic: str, count: int) -> dict[tuple[int, int], Any]:
    """Every record of ``topic`` by (partition, offset): (key, value, headers)."""
    found = await read_topic(topic, lambda message: message, count)
    return {(message.partition, message.offset):
            (message.key, message.value, [(name, bytes(value))
                                          for name, value in message.headers or ()])
            for message in found}


def _keys(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    keys = [b"", "zoë".encode(), "ключ".encode(), "鍵".encode(), "🔑".encode(), b"\x00\xff"]
    while len(keys) < count:
        if rng.random() < 0.5:
            keys.append(rng.randbytes(rng.randrange(1, 40)))
        else:
            keys.append("".join(chr(rng.choice([rng.randrange(32, 127),
                                                rng.randrange(0xa0, 0x3000)]))
                                for _ in range(rng.randrange(1, 24))).encode())
    return keys


async def test_keys_land_where_faust_would_put_them(stack: Stack,
                                                    faust_app: faust.App) -> None:
    batched, per_record = _topic(stack, "keys"), _topic(stack, "keys-old")
    await _create({batched: 6, per_record: 6})
    keys = _keys(400, seed=24)
    records: list[Outgoing] = [(batched, key, b"v" + key, None, None) for key in keys]
    records += [(batched, b"pinned-%d" % n, b"p", n % 6, None) for n in range(12)]
    records += [(batched, None, b"keyless-%d" % n, None, None) for n in range(200)]
    sent = await send_all(BatchProducer(faust_app.producer), records)
    before = await send_all(faust_app.producer,
                            [(per_record, key, value, partition, headers)
                             for _, key, value, partition, headers in records])

    partitioner = DefaultPartitioner()
    for (_, key, _, partition, _), new, old in zip(records, sent, before, strict=True):
        if partition is not None:
            assert new.partition == old.partition == partition
        elif key is not None:  # Kafka's default partitioner, as the contract asks
            assert new.partition == old.partition == partitioner(key, list(range(6)), [])
    # No key: aiokafka's partitioner picks an available partition at random, as before.
    assert len({meta.partition for meta in sent[-200:]}) > 1
    assert {meta.partition for meta in sent[-200:]} <= set(range(6))
    stored = await _read_back(batched, len(records))
    for (_, key, value, _, _), meta in zip(records, sent, strict=True):
        assert stored[(meta.partition, meta.offset)][:2] == (key, value)


async def test_order_headers_and_offsets_across_topics_and_full_batches(
        stack: Stack, faust_app: faust.App) -> None:
    topics = {_topic(stack, "decisions"): 4, _topic(stack, "deadletter"): 3,
              _topic(stack, "changelog"): 4}
    decisions, deadletter, changelog = topics
    await _create(topics)
    rng = random.Random(7)
    records: list[Outgoing] = []
    for n in range(600):
        subject = b"subject-%d" % (n % 37)
        kind = n % 5
        if kind == 0:  # a dead letter, keyless now and then, with the contract's headers
            headers = dead_letter_headers("requests", n % 4, 1000 + n, "schema-invalid",
                                          f"field «{n}» ✗ \x00 invalid")
            records.append((deadletter, None if n % 3 == 0 else subject, b"{bad %d" % n, None,
                            headers))
        elif kind in (1, 2):  # big state records: several full batches per partition
            records.append((changelog, subject, rng.randbytes(rng.randrange(1000, 4000)),
                            n % 4, None))
        else:
            records.append((decisions, subject, b'{"n": %d}' % n, None, None))
    sent = await send_all(BatchProducer(faust_app.producer), records)

    sizes: dict[int, int] = {}
    for record, meta in zip(records, sent, strict=True):
        if record[0] == changelog:
            sizes[meta.partition] = sizes.get(meta.partition, 0) + len(record[2] or b"")
    assert min(sizes.values()) > 3 * BATCH_BYTES, "the changelog's batches should fill"

    for topic in topics:
        ours = [(record, meta) for record, meta in zip(records, sent, strict=True)
                if record[0] == topic]
        stored = await _read_back(topic, len(ours))
        assert len(stored) == len(ours)
        # The offset send_all gave is where a consumer finds the record, headers and all.
        for (_, key, value, _, headers), meta in ours:
            assert (meta.topic, stored[(meta.partition, meta.offset)]) == \
                (topic, (key, value, headers or []))
        # Order within each partition: input order.
        for partition in range(topics[topic]):
            wanted = [value for (_, _, value, _, _), meta in ours if meta.partition == partition]
            assert [stored[where][1] for where in sorted(stored) if where[0] == partition] == \
                wanted


async def test_dead_letter_headers_are_the_same_bytes_as_before(
        stack: Stack, faust_app: faust.App) -> None:
    batched, per_record = _topic(stack, "dl"), _topic(stack, "dl-old")
    await _create({batched: 1, per_record: 1})
    headers = [dead_letter_headers("t", 2, n, "event-too-large", "é" * n + "\udcff")
               for n in range(0, 3000, 300)]
    records = [(batched, b"k", b"v", None, header) for header in headers]
    await send_all(BatchProducer(faust_app.producer), records)
    await send_all(faust_app.producer, [(per_record, *rest) for _, *rest in records])
    new, old = await _read_back(batched, len(records)), await _read_back(per_record,
                                                                         len(records))
    assert [new[where][2] for where in sorted(new)] == \
        [old[where][2] for where in sorted(old)] == headers


async def test_a_batch_the_broker_refuses_fails_send_all(stack: Stack,
                                                         faust_app: faust.App) -> None:
    # Records over the topic's max.message.bytes: the broker refuses the whole batch, its
    # future raises, and send_all raises (the caller then stores and acknowledges nothing).
    small = _topic(stack, "small")
    await _create({small: 1}, **{"max.message.bytes": "2000"})
    with pytest.raises(KafkaError):
        await send_all(BatchProducer(faust_app.producer),
                       [(small, b"k%d" % n, b"x" * 1500, None, None) for n in range(5)])


async def test_the_changelogs_persisted_offset_is_its_last_record(
        stack: Stack, faust_app: faust.App) -> None:
    table = faust_app.Table("grants", default=None, partitions=4, key_type=bytes,
                            value_type=bytes)
    changelog = table.changelog_topic.get_topic_name()
    await _create({changelog: 4})
    access = BatchedTable(table, BatchProducer(faust_app.producer))
    rng = random.Random(3)
    for round_ in range(2):  # the second batch's offsets follow the first's
        writes = [(_Event(n % 4 if n % 7 else 1), b"s-%d-%d" % (round_, n),
                   None if n % 50 == 49 else rng.randbytes(rng.randrange(500, 3000)))
                  for n in range(500)]
        await access.put_all(writes)  # type: ignore[arg-type]
    ends = await _end_offsets(changelog, 4)
    assert sum(ends.values()) == 1000
    store = table.data
    for partition, end in ends.items():
        stored = store._db_for_partition(partition).get(store.offset_key)
        assert int(stored) == end - 1, partition


class _Message:
    def __init__(self, partition: int) -> None:
        self.partition = partition


class _Event:
    def __init__(self, partition: int) -> None:
        self.message = _Message(partition)


async def _end_offsets(topic: str, partitions: int) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p)
                                           for p in range(partitions)])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}
