"""The one factory of aiokafka producers and consumers outside faust.

Every command and policy control gets its clients here, so each is built the same way: the
bootstrap address and the security options of :mod:`streams.kafka.security`, ``acks=all``
for producers, and an error that names the address and the settings when no broker
answers (a client that could not start is closed first: aiokafka otherwise warns of an
unclosed client at exit).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from streams.kafka.admin import no_broker
from streams.kafka.security import kafka_client_options
from streams.settings import KafkaSettings

__all__ = ["assigned", "consumer", "follow", "producer"]


async def _start(kafka: KafkaSettings, client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    try:
        await client.start()
    except BaseException as exc:
        await client.stop()
        if isinstance(exc, KafkaConnectionError):
            raise no_broker(kafka, exc) from exc
        raise


@contextlib.asynccontextmanager
async def producer(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer (``acks=all``), stopped on leaving the block.

    Raises:
        ConfigError: naming the bootstrap address when no broker answered.
    """
    client = AIOKafkaProducer(bootstrap_servers=kafka.kafka_bootstrap, acks="all",
                              **kafka_client_options(kafka))
    await _start(kafka, client)
    try:
        yield client
    finally:
        await client.stop()


@contextlib.asynccontextmanager
async def consumer(kafka: KafkaSettings, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer with ``options`` (aiokafka's), stopped on leaving the block.

    Raises:
        ConfigError: naming the bootstrap address when no broker answered.
    """
    client = AIOKafkaConsumer(bootstrap_servers=kafka.kafka_bootstrap,
                              **kafka_client_options(kafka), **options)
    await _start(kafka, client)
    try:
        yield client
    finally:
        await client.stop()


@contextlib.asynccontextmanager
async def assigned(kafka: KafkaSettings, names: list[str]
                   ) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A consumer in no group (nothing committed) assigned every partition of ``names``,
    read committed, with those partitions; for the commands that read topics from outside
    the worker (``tail``, ``demo``)."""
    async with consumer(kafka, enable_auto_commit=False,
                        isolation_level="read_committed") as client:
        tps: list[TopicPartition] = []
        for name in names:
            partitions = client.partitions_for_topic(name)
            if partitions is None:
                await client._client.force_metadata_update()  # noqa: SLF001 - first lookup
                partitions = client.partitions_for_topic(name) or set()
            tps += [TopicPartition(name, p) for p in sorted(partitions)]
        client.assign(tps)
        yield client, tps


async def follow(kafka: KafkaSettings, names: list[str], stop: asyncio.Event, *,
                 from_beginning: bool = False, to_end: bool = False,
                 ) -> AsyncIterator[tuple[TopicPartition, Any]]:
    """Yield ``(partition, record)`` from every partition of ``names`` as records arrive,
    from the end (or ``from_beginning``) until ``stop``, or with ``to_end`` until each
    partition reached the end it had when this began. Each partition's records come in
    offset order; partitions interleave as fetched."""
    async with assigned(kafka, names) as (client, tps):
        if from_beginning:
            await client.seek_to_beginning(*tps)
        else:
            await client.seek_to_end(*tps)
        ends = await client.end_offsets(tps) if to_end else {}
        left = [tp for tp in tps if not to_end or await client.position(tp) < ends[tp]]
        while left and not stop.is_set():
            batches = await client.getmany(*left, timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    yield tp, record
            if to_end:
                left = [tp for tp in left if await client.position(tp) < ends[tp]]
