"""The worker's start under policy change control: load and check the policy, create the
topics, follow the app's last policy in force, record the load (streams.control.policy)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from streams.control.policy import POLICY_HEADERS, PolicyControl, policy_load_record
from streams.control.rollback import IN_FORCE_KEY, read_in_force_record
from streams.settings import KafkaSettings, PolicySettings, TopicSettings

__all__ = ["load_policy_control"]

log = logging.getLogger(__name__)


async def _publish(kafka: KafkaSettings, topic: str, key: bytes, value: bytes) -> None:
    from streams.kafka.clients import producer

    async with producer(kafka) as client:
        await client.send_and_wait(topic, value, key=key, headers=POLICY_HEADERS)


async def _app_in_force(kafka: KafkaSettings, topics: TopicSettings
                        ) -> tuple[str, str] | None:
    """The policy any worker of the app last put in force: the policy topic's last record."""
    from streams.kafka.clients import follow

    last = None
    async for _, record in follow(kafka, [topics.topic_policy], asyncio.Event(),
                                  from_beginning=True, to_end=True):
        if record.key == IN_FORCE_KEY:
            last = record.value
    return read_in_force_record(last, topics.topic_policy)


def load_policy_control(kafka: KafkaSettings, topics: TopicSettings, policy: PolicySettings,
                        path: Path | None, memory: Path | None = None) -> PolicyControl:
    """The worker's start: load ``path`` (refusing to start without an acceptable policy,
    or, with signers, one older than ``memory`` names), create or check the topics, and log
    the load to the decisions topic. With signers the policy must also follow the app's last
    policy in force (the policy topic, written here once it is in force). The caller calls
    ``remember()`` once it owns the data dir ``memory`` is in.

    Raises:
        PolicyError: when the policy is invalid, unsigned or badly signed.
    """
    from streams.kafka.admin import ensure_topics

    # Validate before touching Kafka: a bad policy is refused at once, broker or not.
    control = PolicyControl(path, policy.policy_signers_file, memory)
    asyncio.run(ensure_topics(kafka, topics))  # the load record goes to the decisions topic
    if control.signed:  # with an empty or old data dir too: the app's fleet never rolls back
        control.follow_app(asyncio.run(_app_in_force(kafka, topics)), topics.topic_policy)
    key, value = policy_load_record(topics.app_id, "loaded", None, control.current, None)
    asyncio.run(_publish(kafka, topics.topic_decisions, key, value))
    if control.signed:
        asyncio.run(_publish(kafka, topics.topic_policy, IN_FORCE_KEY,
                             control.in_force_value()))
    log.info("policy %s (sha256 %s…, signed by %s) in force", control.current.loaded.ref.version,
             control.current.loaded.ref.sha256[:12], control.current.signer or "nobody")
    return control
