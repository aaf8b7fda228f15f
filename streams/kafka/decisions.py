"""Read the decisions topic from outside the worker (``jitwatch demo`` and ``tail``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.decisions import DECISION_SCHEMA
from streams.kafka.clients import consumer
from streams.settings import KafkaSettings, TopicSettings

__all__ = ["collect_decisions", "follow_decisions"]


def _is_verdict(record: dict[str, Any]) -> bool:
    # The decisions topic also carries policy-load records (jit.policy-load/v1, issue F).
    return bool(record.get("schema", DECISION_SCHEMA) == DECISION_SCHEMA)


@contextlib.asynccontextmanager
async def _decisions(kafka: KafkaSettings, topic: str
                     ) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    async with consumer(kafka, enable_auto_commit=False,
                        isolation_level="read_committed") as client:
        partitions = client.partitions_for_topic(topic)
        if partitions is None:
            await client._client.force_metadata_update()  # noqa: SLF001 - first lookup only
            partitions = client.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        client.assign(tps)
        yield client, tps


async def collect_decisions(
    kafka: KafkaSettings,
    topics: TopicSettings,
    wanted: Callable[[dict[str, Any]], bool],
    *,
    expect: int,
    timeout_s: float,
) -> list[dict[str, Any]]:
    """Read the decisions topic from the start until ``expect`` wanted decisions arrived.

    Returns what arrived by ``timeout_s`` (fewer when the worker is behind), deduplicated by
    ``decision_id`` and ordered by event time. Policy-load records are not decisions.
    """
    found: dict[str, dict[str, Any]] = {}
    async with _decisions(kafka, topics.topic_decisions) as (client, tps):
        await client.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(found) < expect and loop.time() < deadline:
            batches = await client.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    decision = orjson.loads(message.value)
                    if _is_verdict(decision) and wanted(decision):
                        found.setdefault(decision["decision_id"], decision)
    return sorted(found.values(), key=lambda d: (d["at"], d["cause"]["offset"] or 0))


async def follow_decisions(
    kafka: KafkaSettings, topics: TopicSettings, stop: asyncio.Event, *,
    from_beginning: bool = False
) -> AsyncIterator[dict[str, Any]]:
    """Yield decisions (not policy-load records) as they are published until ``stop``."""
    async with _decisions(kafka, topics.topic_decisions) as (client, tps):
        if from_beginning:
            await client.seek_to_beginning(*tps)
        else:
            await client.seek_to_end(*tps)
        while not stop.is_set():
            batches = await client.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    decision = orjson.loads(message.value)
                    if _is_verdict(decision):
                        yield decision
