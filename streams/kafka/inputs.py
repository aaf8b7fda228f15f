"""The input topics from outside the worker: publish contract events to them, as an
upstream broker would (the demo), and read them back as replay lines (``tail --inputs``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.engine.plan import LOG_APPEND_TIME
from streams.engine.topics import InputTopics
from streams.kafka.clients import follow, producer
from streams.settings import KafkaSettings, TopicSettings

__all__ = ["InputRecord", "follow_inputs", "publish_events", "topic_of"]


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One input record as the worker would consume it; ``broker_time`` is None for a
    record without a LogAppendTime (the worker dead-letters it: clock-untrusted)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    broker_time: datetime | None


def topic_of(topics: TopicSettings, event: dict[str, Any]) -> str:
    """The input topic an event belongs on (the worker accepts it from no other)."""
    return InputTopics(requests=topics.topic_requests,
                       sessions=topics.topic_sessions).home_of(str(event["type"]))


async def publish_events(kafka: KafkaSettings, topics: TopicSettings,
                         events: Iterable[dict[str, Any]]) -> int:
    """Publish contract events keyed by subject id; returns how many."""
    count = 0
    async with producer(kafka) as client:
        for event in events:
            await client.send(topic_of(topics, event), orjson.dumps(event),
                              key=str(event["subject"]["id"]).encode())
            count += 1
        await client.flush()
    return count


async def follow_inputs(
    kafka: KafkaSettings, topics: TopicSettings, stop: asyncio.Event, *,
    from_beginning: bool = False, to_end: bool = False,
) -> AsyncIterator[InputRecord]:
    """Yield the records of the request and session topics as they arrive until ``stop``,
    or with ``to_end`` until the ends the topics had when this began (an export).

    Each partition's records come in offset order, which is broker-time order
    (LogAppendTime); partitions and topics interleave as fetched (``simulate`` sorts by
    broker time, as the worker sorts each batch).
    """
    async for tp, record in follow(kafka, [topics.topic_requests, topics.topic_sessions],
                                   stop, from_beginning=from_beginning, to_end=to_end):
        stamped = record.timestamp_type == LOG_APPEND_TIME
        yield InputRecord(tp.topic, tp.partition, record.offset, record.value,
                          datetime.fromtimestamp(record.timestamp / 1000, UTC)
                          if stamped else None)
