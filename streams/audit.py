"""The audit sink: every decision, in order, appended to Redis; offsets committed after.

One Redis Stream per decisions partition (``<prefix>:p<partition>``), entry id
``0-<offset + 1>``, so the stream order is the topic order and a replayed offset is
recognised instead of appended twice. Issue D adds the hash chain and signed checkpoints.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from streams.kafka_security import kafka_client_options
from streams.settings import Settings

__all__ = ["AuditRecord", "RedisAuditSink", "run_audit_sink", "stream_key"]

log = logging.getLogger(__name__)


def stream_key(prefix: str, partition: int) -> str:
    """The Redis Stream holding one decisions partition's entries."""
    return f"{prefix}:p{partition}"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One consumed decision record."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


class RedisAuditSink:
    """Buffers decisions with :meth:`add` and appends them with :meth:`flush`.

    A flush is one MULTI/EXEC per call, guarded by WATCH on the streams it writes, and
    skips offsets a stream already holds: redelivery after a crash appends nothing twice.
    """

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._buffer: dict[int, list[AuditRecord]] = defaultdict(list)

    def add(self, record: AuditRecord) -> None:
        """Buffer one record; nothing is written until :meth:`flush`."""
        self._buffer[record.partition].append(record)

    def __len__(self) -> int:
        return sum(len(records) for records in self._buffer.values())

    async def flush(self) -> int:
        """Append the buffered records; returns how many were new. Raises on Redis errors."""
        if not self._buffer:
            return 0
        keys = {partition: stream_key(self._prefix, partition) for partition in self._buffer}
        async with self._client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*keys.values())
                    appended = 0
                    last = {p: await self._last_offset(pipe, key) for p, key in keys.items()}
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    for partition, records in self._buffer.items():
                        for record in records:
                            if record.offset <= last[partition]:
                                continue
                            pipe.xadd(
                                keys[partition],
                                {
                                    "offset": str(record.offset),
                                    "key": record.key or b"",
                                    "decision": record.value,
                                },
                                id=f"0-{record.offset + 1}",
                            )
                            last[partition] = record.offset
                            appended += 1
                    await pipe.execute()
                    break
                except WatchError:
                    continue  # another writer touched a stream: read the heads again
        self._buffer.clear()
        return appended

    @staticmethod
    async def _last_offset(pipe: aioredis.client.Pipeline, key: str) -> int:
        newest = await pipe.xrevrange(key, count=1)
        if not newest:
            return -1
        entry_id = newest[0][0]
        text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        return int(text.split("-")[1]) - 1


async def run_audit_sink(settings: Settings, stop: asyncio.Event) -> None:
    """Consume committed decisions and append them to Redis until ``stop`` is set.

    Offsets are committed only after Redis holds the entries; while Redis is unreachable the
    sink keeps the batch and retries with backoff, never skipping.
    """
    client = aioredis.Redis.from_url(settings.redis_url)
    sink = RedisAuditSink(client, settings.audit_key_prefix)
    consumer = AIOKafkaConsumer(
        settings.topic_decisions,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.audit_group,
        client_id=f"{settings.audit_group}-sink",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **kafka_client_options(settings),
    )
    await consumer.start()
    log.info("audit sink consuming %s as group %s", settings.topic_decisions,
             settings.audit_group)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, messages in batches.items():
                for message in messages:
                    if message.value is not None:
                        sink.add(AuditRecord(tp.partition, message.offset, message.key,
                                             message.value))
            if not batches:
                continue
            await _flush_until_done(sink, stop)
            if len(sink) == 0:
                await consumer.commit()
    finally:
        await consumer.stop()
        await client.aclose()


async def _flush_until_done(sink: RedisAuditSink, stop: asyncio.Event) -> None:
    delay = 0.1
    while True:
        try:
            appended = await sink.flush()
            log.debug("appended %d audit entries", appended)
            return
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if stop.is_set():
                return
            log.warning("Redis unavailable (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
