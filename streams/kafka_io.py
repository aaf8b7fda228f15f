"""Plain aiokafka helpers for tools around the worker: publish events, read decisions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from streams.admin import no_broker
from streams.kafka_security import kafka_client_options
from streams.settings import Settings

__all__ = ["collect_decisions", "follow_decisions", "publish_events"]


async def _start(settings: Settings, client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    """Start a client. One that cannot reach Kafka is closed (aiokafka otherwise warns of
    an unclosed client at exit) and its error names the address and the settings."""
    try:
        await client.start()
    except BaseException as exc:
        await client.stop()
        if isinstance(exc, KafkaConnectionError):
            raise no_broker(settings, exc) from exc
        raise


async def publish_events(settings: Settings, events: Iterable[dict[str, Any]]) -> int:
    """Publish contract events keyed by subject id, as an upstream broker would."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                **kafka_client_options(settings))
    await _start(settings, producer)
    count = 0
    try:
        for event in events:
            topic = (settings.topic_sessions if str(event["type"]).startswith(("session.", "task."))
                     else settings.topic_requests)
            await producer.send(topic, orjson.dumps(event),
                                key=str(event["subject"]["id"]).encode())
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


def _is_verdict(record: dict[str, Any]) -> bool:
    # The decisions topic also carries policy-load records (jit.policy-load/v1, issue F).
    return bool(record.get("schema", "jit.decision/v1") == "jit.decision/v1")


async def _decision_consumer(settings: Settings) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka_client_options(settings),
    )
    await _start(settings, consumer)
    partitions = consumer.partitions_for_topic(settings.topic_decisions)
    if partitions is None:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - first lookup only
        partitions = consumer.partitions_for_topic(settings.topic_decisions) or set()
    tps = [TopicPartition(settings.topic_decisions, p) for p in sorted(partitions)]
    consumer.assign(tps)
    return consumer, tps


async def collect_decisions(
    settings: Settings,
    wanted: Callable[[dict[str, Any]], bool],
    *,
    expect: int,
    timeout_s: float,
) -> list[dict[str, Any]]:
    """Read the decisions topic from the start until ``expect`` wanted decisions arrived.

    Returns what arrived by ``timeout_s`` (fewer when the worker is behind), deduplicated by
    ``decision_id`` and ordered by event time.
    """
    consumer, tps = await _decision_consumer(settings)
    found: dict[str, dict[str, Any]] = {}
    try:
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(found) < expect and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    decision = orjson.loads(message.value)
                    if _is_verdict(decision) and wanted(decision):
                        found.setdefault(decision["decision_id"], decision)
    finally:
        await consumer.stop()
    return sorted(found.values(), key=lambda d: (d["at"], d["cause"]["offset"] or 0))


async def follow_decisions(
    settings: Settings, stop: asyncio.Event, *, from_beginning: bool = False
) -> AsyncIterator[dict[str, Any]]:
    """Yield decisions as they are published until ``stop`` is set."""
    consumer, tps = await _decision_consumer(settings)
    try:
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    decision = orjson.loads(message.value)
                    if _is_verdict(decision):
                        yield decision
    finally:
        await consumer.stop()
