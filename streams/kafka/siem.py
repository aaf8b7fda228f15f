"""``jitwatch siem``'s loop: decisions in, OCSF events out, in its own consumer group.

At least once: a batch's offsets are committed only after every event it made was
acknowledged by the broker (``acks=all``), so a crash re-sends a batch rather than losing
one; SIEMs drop the duplicates by ``metadata.uid`` (the decision id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

from schemas.errors import ConfigError
from streams.kafka.clients import consumer, producer
from streams.settings import KafkaSettings, TopicSettings

__all__ = ["forward"]

log = logging.getLogger(__name__)


async def forward(kafka: KafkaSettings, topics: TopicSettings, stop: asyncio.Event,
                  convert: Callable[[bytes], bytes | None], *,
                  from_beginning: bool = True) -> int:
    """Write ``convert(value)`` of every decisions-topic record to the OCSF topic, keyed as
    the decision was (the subject id), until ``stop``; ``None`` skips a record. Returns
    how many were written. A new group starts at the topic's start (``from_beginning``)
    or at its end."""
    try:
        return await _forward(kafka, topics, stop, convert, from_beginning)
    except (GroupAuthorizationFailedError, TopicAuthorizationFailedError) as exc:
        who = kafka.kafka_sasl_username or "this client"
        raise ConfigError(
            f"{who} is not allowed to ({exc}): jitwatch siem reads "
            f"{topics.topic_decisions} in group {topics.siem_group} and writes "
            f"{topics.topic_decisions_ocsf}; run it as the principal ops/principals.toml "
            "declares for that (ocsf)") from exc


async def _forward(kafka: KafkaSettings, topics: TopicSettings, stop: asyncio.Event,
                   convert: Callable[[bytes], bytes | None], from_beginning: bool) -> int:
    written = 0
    async with (
        consumer(kafka, group_id=topics.siem_group, enable_auto_commit=False,
                 isolation_level="read_committed",
                 auto_offset_reset="earliest" if from_beginning else "latest") as source,
        producer(kafka) as sink,
    ):
        source.subscribe([topics.topic_decisions])
        while not stop.is_set():
            batches = await source.getmany(timeout_ms=500, max_records=1000)
            sent = []
            for records in batches.values():
                for record in records:
                    if record.value is None:  # a tombstone: no decision (only said)
                        log.warning("%s[%d]@%d has no value: no OCSF event", record.topic,
                                    record.partition, record.offset)
                        continue
                    event = convert(record.value)
                    if event is not None:
                        sent.append(await sink.send(topics.topic_decisions_ocsf, event,
                                                    key=record.key))
            for acknowledged in sent:
                await acknowledged
            written += len(sent)
            if batches:
                await source.commit()
    return written
