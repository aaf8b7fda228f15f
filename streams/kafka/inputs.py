"""Publish contract events to the input topics, as an upstream broker would (the demo)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from streams.kafka.clients import producer
from streams.settings import Settings

__all__ = ["publish_events", "topic_of"]


def topic_of(settings: Settings, event: dict[str, Any]) -> str:
    """The input topic of an event: sessions and task events, else requests."""
    return (settings.topic_sessions if str(event["type"]).startswith(("session.", "task."))
            else settings.topic_requests)


async def publish_events(settings: Settings, events: Iterable[dict[str, Any]]) -> int:
    """Publish contract events keyed by subject id; returns how many."""
    count = 0
    async with producer(settings) as client:
        for event in events:
            await client.send(topic_of(settings, event), orjson.dumps(event),
                              key=str(event["subject"]["id"]).encode())
            count += 1
        await client.flush()
    return count
