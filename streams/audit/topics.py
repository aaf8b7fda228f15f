"""The audit trail's Kafka side: the decisions topic the chains must equal, and the
checkpoints' anchor outside Redis (``jit.audit.checkpoints``).

The notary compares what it is about to sign with the decisions topic record for record
(:class:`TopicReader`), and publishes every checkpoint it signs to the anchor topic
(:class:`AnchorWriter`), written only by its principal and kept without a time limit. The
verifier reads the anchor back (:func:`read_anchor`) and compares it with Redis: a
checkpoint dropped or replaced in Redis is still in Kafka.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from schemas.errors import JitwatchError
from streams.audit.chain import Checkpoint
from streams.kafka.security import kafka_client_options
from streams.settings import KafkaSettings

__all__ = ["AnchorWriter", "TopicReader", "anchor_record", "content_digest",
           "kafka_options", "read_anchor", "topic_end", "topic_records"]

def kafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The bootstrap servers and the same SASL/TLS options as every other jitwatch client
    (``JITWATCH_KAFKA_*``), for the readers and the writer here. They assign partitions
    themselves and commit nothing, so no consumer group is needed."""
    return {"bootstrap_servers": kafka.kafka_bootstrap, **kafka_client_options(kafka)}


def content_digest(key: bytes, decision: bytes) -> bytes:
    """What a chain entry and a topic record are compared by (key and value)."""
    return hashlib.sha256(len(key).to_bytes(8, "big") + key + decision).digest()


def anchor_record(prefix: str, payload: bytes, signature: bytes) -> bytes:
    """One checkpoint as the anchor topic holds it, with the key prefix of its trail (one
    anchor topic may serve trails under several prefixes)."""
    return orjson.dumps({"prefix": prefix, "payload": payload.decode(),
                         "sig": signature.decode()})


def _consumer(kafka: dict[str, Any], what: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(**kafka, enable_auto_commit=False,
                            isolation_level="read_committed", auto_offset_reset="earliest",
                            client_id=f"jitwatch-audit-{what}")


async def _start(client: AIOKafkaConsumer | AIOKafkaProducer, kafka: dict[str, Any],
                 topic: str) -> None:
    try:
        await client.start()
    except KafkaError as exc:
        await client.stop()
        raise JitwatchError(f"cannot reach {topic} on Kafka at {kafka['bootstrap_servers']} "
                            f"({exc}); check JITWATCH_KAFKA_BOOTSTRAP and the principal's "
                            "JITWATCH_KAFKA_SECURITY_PROTOCOL/SASL_* settings") from exc


async def topic_records(kafka: dict[str, Any], topic: str, partition: int,
                        start: int | None = None, end: int | None = None
                        ) -> AsyncIterator[tuple[int, bytes | None, bytes]]:
    """The committed records (offset, key, value) of one topic partition from ``start``
    (None: its beginning) up to ``end`` (None: its current end). A record without a value
    (a tombstone) comes with an empty one, as the sink chains it."""
    consumer = _consumer(kafka, "reader")
    await _start(consumer, kafka, topic)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        if start is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, start)
        last = (await consumer.end_offsets([tp]))[tp]
        end = last if end is None else min(end, last)  # never wait for records to come
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
            for message in batches.get(tp, []):
                if message.offset >= end:
                    return
                yield message.offset, message.key, message.value or b""
    finally:
        await consumer.stop()


async def topic_end(kafka: dict[str, Any], topic: str, partition: int) -> int:
    """The offset after one topic partition's last record."""
    consumer = _consumer(kafka, "reader")
    await _start(consumer, kafka, topic)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


class TopicReader:
    """Reads ranges of the decisions topic for the notary."""

    def __init__(self, kafka: dict[str, Any], topic: str) -> None:
        self._kafka = kafka
        self._topic = topic

    async def digests(self, partition: int, start: int, end: int) -> dict[int, bytes]:
        """Offset -> :func:`content_digest` of the records from ``start`` to ``end``
        (inclusive)."""
        return {offset: content_digest(key or b"", value) async for offset, key, value in
                topic_records(self._kafka, self._topic, partition, start, end + 1)}


class AnchorWriter:
    """Publishes checkpoints to the anchor topic, partition for partition."""

    def __init__(self, kafka: dict[str, Any], topic: str, prefix: str) -> None:
        self._kafka = kafka
        self.topic = topic
        self._prefix = prefix
        self._producer: AIOKafkaProducer | None = None

    async def publish(self, checkpoint: Checkpoint, payload: bytes, signature: bytes) -> None:
        """Append one checkpoint to the anchor partition of its chain; raises on failure
        (the notary publishes what the anchor lacks when it starts again)."""
        if self._producer is None:
            producer = AIOKafkaProducer(**self._kafka, acks="all", enable_idempotence=True,
                                        client_id="jitwatch-notary")
            await _start(producer, self._kafka, self.topic)
            self._producer = producer
        await self._producer.send_and_wait(
            self.topic, anchor_record(self._prefix, payload, signature),
            key=b"%d" % checkpoint.partition, partition=checkpoint.partition)

    async def anchored(self, partition: int) -> list[tuple[bytes, bytes]]:
        """The checkpoints the anchor holds for a chain."""
        return await read_anchor(self._kafka, self.topic, partition, self._prefix)

    async def close(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


async def read_anchor(kafka: dict[str, Any], topic: str, partition: int,
                      prefix: str) -> list[tuple[bytes, bytes]]:
    """The (payload, signature) of every checkpoint the anchor holds for one chain of the
    trail under ``prefix``, oldest first; a record that is not one is kept as it is (the
    comparison shows it)."""
    found: list[tuple[bytes, bytes]] = []
    async for _, _, value in topic_records(kafka, topic, partition):
        try:
            record = orjson.loads(value)
            if record["prefix"] != prefix:
                continue
            found.append((str(record["payload"]).encode(), str(record["sig"]).encode()))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            found.append((value, b""))
    return found
