"""Read the decisions topic (and the notices topic, issue J) from outside the worker
(``jitwatch demo`` and ``tail``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from schemas.decisions import DECISION_SCHEMA
from schemas.notices import NOTICE_SCHEMA
from streams.kafka.clients import assigned, follow
from streams.settings import KafkaSettings, TopicSettings

__all__ = ["collect_decisions", "collect_notices", "follow_decisions", "read_to_end"]


def _is_verdict(record: dict[str, Any]) -> bool:
    # The decisions topic also carries policy-load records (jit.policy-load/v1, issue F).
    return bool(record.get("schema", DECISION_SCHEMA) == DECISION_SCHEMA)


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
    return await _collect(kafka, topics.topic_decisions, "decision_id",
                          lambda record: _is_verdict(record) and wanted(record),
                          expect, timeout_s)


async def collect_notices(
    kafka: KafkaSettings,
    topics: TopicSettings,
    wanted: Callable[[dict[str, Any]], bool],
    *,
    expect: int,
    timeout_s: float,
) -> list[dict[str, Any]]:
    """:func:`collect_decisions` for the notices topic (issue J), by ``notice_id``."""
    return await _collect(kafka, topics.topic_notices, "notice_id",
                          lambda record: record.get("schema") == NOTICE_SCHEMA
                          and wanted(record), expect, timeout_s)


async def _collect(kafka: KafkaSettings, topic: str, id_field: str,
                   wanted: Callable[[dict[str, Any]], bool], expect: int, timeout_s: float,
                   ) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    async with assigned(kafka, [topic]) as (client, tps):
        await client.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(found) < expect and loop.time() < deadline:
            batches = await client.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    record = orjson.loads(message.value)
                    if wanted(record):
                        found.setdefault(record[id_field], record)
    return sorted(found.values(), key=lambda d: (d["at"], d["cause"]["offset"] or 0))


async def follow_decisions(
    kafka: KafkaSettings, topics: TopicSettings, stop: asyncio.Event, *,
    from_beginning: bool = False, to_end: bool = False,
) -> AsyncIterator[dict[str, Any]]:
    """Yield decisions (not policy-load records) as they are published until ``stop`` (or
    with ``to_end``, until the end the topic had when this began)."""
    async for _, record in follow(kafka, [topics.topic_decisions], stop,
                                  from_beginning=from_beginning, to_end=to_end):
        decision = orjson.loads(record.value)
        if _is_verdict(decision):
            yield decision


async def read_to_end(kafka: KafkaSettings, topic: str,
                      on_total: Callable[[int], None]) -> AsyncIterator[bytes | None]:
    """Every value of ``topic`` from its start to the end it had when this began (read
    committed, no group), for a report of the topic as it stands; None for a record without
    a value (a tombstone: the caller says it skipped it). ``on_total`` is told first how
    many offsets that spans, for a progress bar (transaction markers take offsets too, so a
    little fewer values may come)."""
    async with assigned(kafka, [topic]) as (client, tps):
        starts = await client.beginning_offsets(tps)
        ends = await client.end_offsets(tps)
        on_total(sum(ends[tp] - starts[tp] for tp in tps))
        await client.seek_to_beginning(*tps)
        left = [tp for tp in tps if ends[tp] > starts[tp]]
        while left:
            batches = await client.getmany(*left, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield record.value
            left = [tp for tp in left if await client.position(tp) < ends[tp]]
