"""The one factory of aiokafka producers and consumers outside faust.

Every command and policy control gets its clients here, so each is built the same way: the
bootstrap address and the security options of :mod:`streams.kafka.security`, ``acks=all``
for producers, and an error that names the address and the settings when no broker
answers (a client that could not start is closed first: aiokafka otherwise warns of an
unclosed client at exit).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from streams.kafka.admin import no_broker
from streams.kafka.security import kafka_client_options
from streams.settings import KafkaSettings

__all__ = ["consumer", "producer"]


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
