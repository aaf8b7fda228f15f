"""Entries older than the decisions topic's retention (issue I): "before retention, covered
by checkpoint N" passes when a checkpoint signed them, and is told apart from a sink behind
the topic. Real Kafka (records deleted with DeleteRecords, as retention does) and Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete

from streams.audit import AuditRecord, RedisAuditSink
from streams.audit.against import UnsignedLimits
from streams.audit.keys import redis_for
from streams.audit.notary import Notary, load_private_key, load_public_key
from streams.audit.topics import TopicReader
from streams.audit.verify import VerifyReport, verify_redis
from streams.settings import Settings, load_settings
from tests.integration.conftest import BOOTSTRAP, REDIS_ADMIN_USER, Stack, redis_admin

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not REDIS_ADMIN_USER and not os.environ.get("CI"),
                                 reason="needs the stack's ACL users")]

KAFKA = {"bootstrap_servers": BOOTSTRAP}


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return load_settings(**{name[len("JITWATCH_"):].lower(): value
                            for name, value in stack.env.items()
                            if name.startswith("JITWATCH_")})


class Trail:
    """A topic of its own, its chain (6 entries, signed through seq 3) and verify."""

    def __init__(self, settings: Settings, topic: str, prefix: str) -> None:
        self.settings, self.topic, self.prefix = settings, topic, prefix

    async def produce(self, count: int) -> list[AuditRecord]:
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await producer.start()
        try:
            records = []
            for n in range(count):
                value = orjson.dumps({"decision_id": f"d-{uuid.uuid4().hex}", "n": n})
                meta = await producer.send_and_wait(self.topic, value, key=b"k", partition=0)
                records.append(AuditRecord(0, meta.offset, b"k", value))
            return records
        finally:
            await producer.stop()

    async def delete_before(self, offset: int) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await admin.start()
        try:
            await admin.delete_records({TopicPartition(self.topic, 0): RecordsToDelete(offset)})
        finally:
            await admin.close()

    async def verify(self) -> VerifyReport:
        client = redis_for(self.settings.audit, "verifier")
        try:
            return await verify_redis(
                client, self.prefix, 1, load_public_key(self.settings.audit_verify_key_file),
                KAFKA, self.topic, UnsignedLimits(datetime.now(UTC), 3600, 1000))
        finally:
            await client.aclose()


@pytest.fixture
async def trail(settings: Settings) -> AsyncIterator[Trail]:
    topic = f"it-audit-retention-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    found = Trail(settings, topic, f"jitwatch:it-{uuid.uuid4().hex[:8]}:audit")
    records = await found.produce(6)
    sink_client, notary_client = (redis_for(settings.audit, role) for role in ("sink", "notary"))
    sink = RedisAuditSink(sink_client, found.prefix)
    notary = Notary(notary_client, found.prefix, 1,
                    load_private_key(settings.audit_signing_key_file), every=1,
                    interval_s=3600, topic=TopicReader(KAFKA, topic))
    await notary.load()
    for signed, part in ((True, records[:4]), (False, records[4:])):
        for record in part:
            sink.add(record)
        await sink.flush()
        if signed:  # through seq 3; the two newest stay unsigned
            assert await notary.tick(force=True) == 1
    yield found
    admin_client = redis_admin()
    keys = [key async for key in admin_client.scan_iter(match=f"{found.prefix}:*")]
    if keys:
        await admin_client.delete(*keys)
    for client in (sink_client, notary_client, admin_client):
        await client.aclose()


async def test_entries_before_retention_covered_by_a_checkpoint_pass(trail: Trail) -> None:
    await trail.delete_before(3)
    report = await trail.verify()
    assert report.exit_code == 0, [part.line() for part in report.partitions]
    [part] = report.partitions
    assert "3 entries before retention, covered by checkpoint #0 (seq 3)" in part.line()
    assert "equal to the topic's 3 records" in part.line()


async def test_entries_before_retention_no_checkpoint_covers_are_incomplete(
    trail: Trail
) -> None:
    await trail.delete_before(5)
    report = await trail.verify()
    assert report.exit_code == 2
    [problem] = report.problems
    assert (problem.verdict, problem.seq) == ("incomplete", 4)
    assert "before the topic's retention and not covered by a checkpoint" in problem.what


async def test_a_topic_partition_retention_emptied_is_not_taken_for_inserted_entries(
    trail: Trail
) -> None:
    """A quiet partition whose every record left retention: the topic is empty. Verify
    took each entry for one "beyond the topic's end (inserted)", TAMPERED, and would say
    so for every quiet partition, every day. Entries below the topic's start are before
    retention; those two unsigned, incomplete."""
    await trail.delete_before(6)
    report = await trail.verify()
    assert report.exit_code == 2, [part.line() for part in report.partitions]
    [problem] = report.problems
    assert (problem.verdict, problem.seq) == ("incomplete", 5)
    assert "before the topic's retention and not covered by a checkpoint" in problem.what


async def test_a_retention_emptied_partition_signed_to_its_end_passes(
    trail: Trail, settings: Settings
) -> None:
    client = redis_for(settings.audit, "notary")
    try:
        notary = Notary(client, trail.prefix, 1,
                        load_private_key(settings.audit_signing_key_file), every=1,
                        interval_s=3600, topic=TopicReader(KAFKA, trail.topic))
        await notary.load()
        assert await notary.tick(force=True) == 1
    finally:
        await client.aclose()
    await trail.delete_before(6)
    report = await trail.verify()
    assert report.exit_code == 0, [part.line() for part in report.partitions]
    [part] = report.partitions
    assert "6 entries before retention, covered by checkpoint #1 (seq 5)" in part.line()


async def test_a_sink_behind_is_told_apart_from_retention(trail: Trail) -> None:
    await trail.delete_before(3)
    await trail.produce(2)
    report = await trail.verify()
    assert report.exit_code == 2
    [problem] = report.problems
    assert "sink behind" in problem.what
    assert "retention" not in problem.what
