"""Canonical partition on the real broker (issue H, finding 15): records a librdkafka
producer put on other partitions than murmur2 of their key are forwarded to their subject's
partition, so each subject has one state and its grants expire on time.

Produced with confluent-kafka's default partitioner (``consistent_random``: CRC32 of the
key), as kcat, Fluent Bit and the confluent clients do, next to aiokafka's murmur2.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Producer as LibrdkafkaProducer

from schemas.canonical import canonical_id
from streams.engine.partitioner import partition_of
from tests.factories import raw_request
from tests.integration.conftest import (
    BOOTSTRAP,
    Producer,
    Stack,
    assign_from_start,
    settle,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]

TTL_S = 5
LATE_S = 10.0
"""How long after ``expires_at`` a revoke may come (the timer checks each second, waits out
a grace, and the CI machine is slow): late, not missing; the benchmark measures latency."""


def _subjects(run: str, partitions: int, count: int = 6) -> list[str]:
    # Subjects librdkafka's default partitioner puts elsewhere than murmur2 does (it does
    # so for most keys; choosing them keeps the test meaningful on every run).
    found: list[str] = []
    number = 0
    while len(found) < count:
        subject = f"Part-{run}-{number}@example.com"  # upper case: the key is canonical
        key = canonical_id(subject).encode()
        if zlib.crc32(subject.encode()) % partitions != partition_of(key, partitions):
            found.append(subject)
        number += 1
    return found


def _request(request_id: str, subject: str, resource: str) -> dict[str, Any]:
    raw = raw_request(request_id, [(resource, "prod")], subject=subject, ttl_s=TTL_S,
                      event_id=f"e-{request_id}-{uuid.uuid4().hex[:6]}")
    raw["at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return raw


def _produce_with_librdkafka(topic: str, events: list[dict[str, Any]]) -> dict[str, int]:
    """Send each event keyed by its subject id with librdkafka's default partitioner;
    returns the partition each subject's record landed on."""
    client = LibrdkafkaProducer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
    landed: dict[str, int] = {}

    def delivered(error: Any, message: Any) -> None:
        assert error is None, error
        landed[message.key().decode()] = message.partition()

    for event in events:
        subject = event["subject"]["id"]
        client.produce(topic, orjson.dumps(event), key=subject.encode(), on_delivery=delivered)
    assert client.flush(30) == 0, "librdkafka did not deliver every record"
    return landed


async def _read(topic: str, until: Any, timeout_s: float) -> list[tuple[int, Any]]:
    """Every (partition, message) of ``topic`` from the start, until ``until(found)``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    found: list[tuple[int, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        await assign_from_start(consumer, topic, deadline)
        while not until(found) and time.monotonic() < deadline:
            for tp, messages in (await consumer.getmany(timeout_ms=200)).items():
                found += [(tp.partition, message) for message in messages]
    finally:
        await consumer.stop()
    return found


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_librdkafka_partitioned_input_has_one_state_per_subject_and_expires_on_time(
    stack: Stack, producer: Producer
) -> None:
    partitions = int(stack.env["JITWATCH_TOPIC_PARTITIONS"])
    subjects = _subjects(uuid.uuid4().hex[:8], partitions)
    owners = {canonical_id(s): partition_of(canonical_id(s).encode(), partitions)
              for s in subjects}
    landed = await asyncio.to_thread(_produce_with_librdkafka, stack.requests,
                                     [_request("r-1", s, "db/orders") for s in subjects])
    # librdkafka's choice (CRC32), not murmur2: every record is on another partition.
    assert all(landed[s] != owners[canonical_id(s)] for s in subjects), landed
    # A second request of each subject from a murmur2 producer (aiokafka), spelled in
    # lower case: it lands on the owning partition and must meet the first one's state.
    for subject in subjects:
        await producer.publish(_request("r-2", subject.lower(), "logs/app"))

    def all_revoked(found: list[tuple[int, Any]]) -> bool:
        revoked = {(canonical_id(d["subject"]["id"]), target)
                   for d in (orjson.loads(m.value) for _, m in found)
                   if d.get("action") == "revoke" and canonical_id(d["subject"]["id"]) in owners
                   for target in d["targets"]}
        return len(revoked) >= 2 * len(subjects)

    decisions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, message in await _read(stack.decisions, all_revoked, timeout_s=60):
        decision = orjson.loads(message.value)
        if "action" in decision and canonical_id(decision["subject"]["id"]) in owners:
            decisions[canonical_id(decision["subject"]["id"])].append(decision)

    for subject, made in decisions.items():
        approves = {d["request_id"]: d for d in made if d["action"] == "approve"}
        revokes = {target: d for d in made if d["action"] == "revoke" for target in d["targets"]}
        assert set(approves) == {"r-1", "r-2"}, (subject, made)
        assert set(revokes) == {"r-1", "r-2"}, f"{subject}: grants never revoked: {made}"
        for request_id, approve in approves.items():
            revoke = revokes[request_id]
            assert (revoke["rule"]["id"], revoke["at"]) == ("ttl-expired", approve["expires_at"])
            late = _parse(revoke["emitted_at"]) - _parse(approve["expires_at"])
            assert timedelta(0) <= late <= timedelta(seconds=LATE_S), (subject, late)
        # The librdkafka record is decided as the original: its own topic, partition, offset.
        first = approves["r-1"]["cause"]
        assert (first["topic"], first["partition"]) == (
            stack.requests, landed[next(s for s in subjects if canonical_id(s) == subject)])
    assert set(decisions) == set(owners)

    # One state per subject: the table's changelog holds each subject on its owning
    # partition only, under its canonical key.
    changelog = f"{stack.env['JITWATCH_APP_ID']}-grants-changelog"
    await settle()
    where: dict[str, set[int]] = defaultdict(set)
    for partition, message in await _read(changelog, lambda _: False, timeout_s=10):
        key = message.key.decode()
        if key in owners:
            where[key].add(partition)
    assert where == {key: {owner} for key, owner in owners.items()}
