"""Publish contract events to the input topics, as an upstream broker would (the demo)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from streams.engine.topics import InputTopics
from streams.kafka.clients import producer
from streams.settings import KafkaSettings, TopicSettings

__all__ = ["publish_events", "topic_of"]


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
