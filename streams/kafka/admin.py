"""Create and check the topics jitwatch uses: inputs share one partition count, and are
stamped by the broker (LogAppendTime), whose clock the worker decides on (issue H)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from schemas.errors import ConfigError
from streams.kafka.security import kafka_client_options
from streams.settings import KafkaSettings, TopicSettings

__all__ = ["ANCHOR_CONFIGS", "TIMESTAMP_TYPE", "TOPIC_CONFIGS", "broker_answers", "ensure_topics",
           "no_broker", "timestamp_problems", "wait_for_broker"]

TIMESTAMP_TYPE = "message.timestamp.type"
TOPIC_CONFIGS = {TIMESTAMP_TYPE: "LogAppendTime"}
ANCHOR_CONFIGS = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
"""The audit checkpoints' anchor topic (issue I) keeps every checkpoint: no time or size
limit."""
"""The configuration of every topic jitwatch creates: the broker stamps each record with
the time it appended it, so a record's timestamp is the broker's clock, not a producer's."""

log = logging.getLogger(__name__)


def no_broker(kafka: KafkaSettings, exc: BaseException, within_s: float | None = None
              ) -> ConfigError:
    """The error for a Kafka that did not answer: the address and the settings to change."""
    within = "" if within_s is None else f" within {within_s:.0f} s"
    if kafka.kafka_security_protocol.startswith("SASL_") and \
            kafka.kafka_sasl_mechanism == "OAUTHBEARER":
        from streams.kafka.oauth import token_provider

        refused = token_provider(kafka).refused
        if refused is not None:  # it answered, and said no: that is what to fix
            return ConfigError(refused)
    return ConfigError(
        f"no Kafka broker answered at {kafka.kafka_bootstrap}{within} ({exc}); start one "
        "with `ops/stack up` or set JITWATCH_KAFKA_BOOTSTRAP (and "
        "JITWATCH_KAFKA_SECURITY_PROTOCOL if the broker wants TLS or SASL)")


async def wait_for_broker(kafka: KafkaSettings, topics: TopicSettings,
                          timeout_s: float = 60.0) -> AIOKafkaAdminClient:
    """Connect an admin client, retrying until the broker answers or ``timeout_s`` passes.

    Raises:
        ConfigError: naming the bootstrap address when no broker answered in time.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    warned = False
    try:
        while True:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=kafka.kafka_bootstrap,
                client_id=f"{topics.app_id}-admin", **kafka_client_options(kafka),
            )
            try:
                await admin.start()
                await admin.list_topics()
                return admin
            except (KafkaConnectionError, OSError) as exc:
                await admin.close()
                if loop.time() >= deadline:
                    raise no_broker(kafka, exc, timeout_s) from exc
                if not warned:
                    # Once, instead of aiokafka's error line every half second.
                    log.warning("no Kafka broker answers at %s yet (%s); retrying for up to "
                                "%.0f s", kafka.kafka_bootstrap, exc, timeout_s)
                    aiokafka_log.setLevel(logging.CRITICAL)
                    warned = True
                await asyncio.sleep(0.5)
    finally:
        aiokafka_log.setLevel(level)


async def broker_answers(kafka: KafkaSettings, topics: TopicSettings,
                         timeout_s: float = 60.0) -> None:
    """Return once a broker answers; :class:`ConfigError` naming the address after
    ``timeout_s``."""
    admin = await wait_for_broker(kafka, topics, timeout_s)
    await admin.close()


async def ensure_topics(kafka: KafkaSettings, topics: TopicSettings) -> dict[str, int]:
    """Create missing topics with the configured partitions; check existing ones.

    Returns:
        The partition count of each topic.

    Raises:
        ConfigError: when an existing input topic's partition count differs, since state
            would then not be co-partitioned with its input, or when an input topic is not
            ``message.timestamp.type=LogAppendTime`` (:func:`timestamp_problems`).
    """
    names = (
        topics.topic_requests,
        topics.topic_sessions,
        topics.topic_decisions,
        topics.topic_deadletter,
        topics.topic_notices,
        topics.topic_commands,
        topics.topic_repartition,
        topics.topic_policy,
        topics.topic_audit_checkpoints,
        topics.topic_decisions_ocsf,
    )
    admin = await wait_for_broker(kafka, topics)
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            # Another process may create one between our list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([_new_topic(name, topics) for name in missing])
            log.info("created topics %s", ", ".join(missing))
        counts = await _partition_counts(admin, names)
        inputs = (topics.topic_requests, topics.topic_sessions)
        problems = timestamp_problems(await _timestamp_types(admin, inputs), inputs,
                                      kafka.kafka_bootstrap)
    finally:
        await admin.close()
    if problems:
        raise ConfigError("; ".join(problems))
    for name in (topics.topic_requests, topics.topic_sessions, topics.topic_commands,
                 topics.topic_repartition):
        if counts.get(name) != topics.topic_partitions:
            raise ConfigError(
                f"topic {name} has {counts.get(name)} partitions but JITWATCH_TOPIC_PARTITIONS "
                f"is {topics.topic_partitions}; inputs must match so each subject's state "
                "lives with its events"
            )
    return counts


def _new_topic(name: str, topics: TopicSettings) -> NewTopic:
    if name == topics.topic_audit_checkpoints:  # the audit's anchor: kept without limit
        return NewTopic(name, topics.topic_partitions, topics.topic_replication,
                        topic_configs={**TOPIC_CONFIGS, **ANCHOR_CONFIGS})
    if name == topics.topic_policy:  # one record that matters: the last, kept by compaction
        return NewTopic(name, 1, topics.topic_replication,
                        topic_configs={**TOPIC_CONFIGS, "cleanup.policy": "compact"})
    return NewTopic(name, topics.topic_partitions, topics.topic_replication,
                    topic_configs=dict(TOPIC_CONFIGS))


async def _partition_counts(
    admin: AIOKafkaAdminClient, names: tuple[str, ...], timeout_s: float = 15.0
) -> dict[str, int]:
    # Right after CreateTopics (ours or another process's) the controller may not have
    # propagated the new topics to the broker answering metadata: they describe with no
    # partitions for a moment. Ask again until every topic has partitions, or the deadline
    # passes and the caller reports the count it saw.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        described = await admin.describe_topics(list(names))
        counts = {item["topic"]: len(item["partitions"]) for item in described}
        if all(counts.get(name) for name in names) or loop.time() >= deadline:
            return counts
        await asyncio.sleep(0.2)


def timestamp_problems(types: Mapping[str, str | None], inputs: Iterable[str],
                       bootstrap: str) -> list[str]:
    """What is wrong with the input topics' timestamp types (``types``: topic ->
    ``message.timestamp.type``, None when the broker did not say): each names the topic and
    the fix. The worker decides on the broker's clock, so an input topic whose records carry
    their producer's time (CreateTime) is refused rather than trusted."""
    found = []
    for topic in inputs:
        kind = types.get(topic)
        if kind != TOPIC_CONFIGS[TIMESTAMP_TYPE]:
            found.append(
                f"input topic {topic} has {TIMESTAMP_TYPE}={kind or 'unknown'}, but jitwatch "
                "decides on the broker's clock and needs LogAppendTime; set it with "
                f"`kafka-configs.sh --bootstrap-server {bootstrap} --alter --entity-type "
                f"topics --entity-name {topic} --add-config {TIMESTAMP_TYPE}=LogAppendTime` "
                "(topics `jitwatch topics create` makes have it)")
    return found


async def _timestamp_types(admin: AIOKafkaAdminClient, names: Iterable[str],
                           timeout_s: float = 15.0) -> dict[str, str | None]:
    # Right after CreateTopics a broker may answer DescribeConfigs for a new topic with an
    # error (it has not seen the topic yet: a fresh stack under load did): ask again until
    # every topic's type is known, or the deadline passes and the caller refuses the ones
    # still unknown, naming them.
    names = tuple(names)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        found = await _described_timestamp_types(admin, names)
        if all(found.get(name) for name in names) or loop.time() >= deadline:
            return found
        await asyncio.sleep(0.2)


async def _described_timestamp_types(admin: AIOKafkaAdminClient, names: tuple[str, ...]
                                     ) -> dict[str, str | None]:
    # DescribeConfigs answers per resource (error_code, error_message, resource_type,
    # resource_name, config_entries), each entry starting (name, value, ...).
    responses: list[Any] = await admin.describe_configs([
        ConfigResource(ConfigResourceType.TOPIC, name, {TIMESTAMP_TYPE: None})
        for name in names])
    found: dict[str, str | None] = {}
    for response in responses:
        for resource in response.resources:
            error_code, _, _, name, entries = resource[:5]
            if error_code:
                continue  # reported as unknown: refused, naming the topic
            for entry in entries:
                if entry[0] == TIMESTAMP_TYPE:
                    found[name] = entry[1]
    return found
