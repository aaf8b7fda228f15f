"""End to end on the real broker: request → verdict on the decisions topic → audit entry."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from streams.audit import stream_key
from tests.factories import at, raw_request
from tests.integration.conftest import (
    Producer,
    Stack,
    decisions_for,
    read_topic,
    settle,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker", "audit_sink")]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _subject() -> str:
    return f"it-{uuid.uuid4().hex[:10]}"


async def test_compliant_request_is_approved_with_full_decision(
    stack: Stack, producer: Producer
) -> None:
    subject = _subject()
    partition, offset = await producer.publish(
        raw_request("r-1", [("db/orders", "prod")], subject=subject, tenant="acme", ttl_s=600)
    )
    [decision] = await decisions_for(stack, subject, 1)
    assert decision["action"] == "approve"
    assert decision["rule"]["id"] == "auto-approve"
    assert decision["tenant"] == "acme"
    assert decision["request_id"] == "r-1"
    # Decided on the broker's clock (issue H), not the claimed at(0): the grant runs 600 s
    # from when the broker appended the request.
    # (Compared as times: a broker time has milliseconds, which the wire spells with six
    # digits, as it does emitted_at's.)
    received = producer.broker_time(partition, offset)
    assert _parse(decision["at"]) == received
    assert _parse(decision["expires_at"]) == received + timedelta(seconds=600)
    assert abs((received - at(0)).total_seconds()) < 60, "the claim was honest"
    assert decision["cause"] == {"event_id": "e-r-1", "type": "request.created",
                                 "topic": stack.requests, "partition": partition,
                                 "offset": offset}
    assert decision["state"]["before"]["active_grants"] == 0
    assert decision["state"]["after"] == {"active_grants": 1, "active_resources": 1,
                                          "envs": ["prod"]}
    assert len(decision["policy"]["sha256"]) == 64


async def test_cap_revokes_the_oldest_grant(stack: Stack, producer: Producer) -> None:
    subject = _subject()
    await producer.publish(raw_request("r-1", [("a", "prod"), ("b", "prod")], subject=subject))
    await producer.publish(raw_request("r-2", [("c", "prod")], subject=subject, t=1))
    await producer.publish(raw_request("r-3", [("d", "prod")], subject=subject, t=2))
    decisions = await decisions_for(stack, subject, 4)
    assert [(d["action"], d["rule"]["id"], d["targets"]) for d in decisions] == [
        ("approve", "auto-approve", []),
        ("approve", "auto-approve", []),
        ("approve", "auto-approve", []),
        ("revoke", "max-active-resources", ["r-1"]),
    ]
    assert decisions[3]["state"]["after"]["active_resources"] == 2


async def test_exclusive_environments(stack: Stack, producer: Producer) -> None:
    subject = _subject()
    await producer.publish(raw_request("r-1", [("db", "prod"), ("nb", "research")],
                                       subject=subject))
    await producer.publish(raw_request("r-2", [("db", "prod")], subject=subject, t=1))
    await producer.publish(raw_request("r-3", [("nb", "research")], subject=subject, t=2))
    decisions = await decisions_for(stack, subject, 4)
    assert [(d["action"], d["request_id"], d["rule"]["id"]) for d in decisions] == [
        ("deny", "r-1", "exclusive-environments"),
        ("approve", "r-2", "auto-approve"),
        ("approve", "r-3", "auto-approve"),
        ("revoke", "r-2", "exclusive-environments"),
    ]


async def test_an_event_appended_twice_is_approved_once(stack: Stack,
                                                       producer: Producer) -> None:
    """A producer that sends one event twice (a retry without idempotence) appends two
    records. Since issue H the second is another record (the redelivery memory covers the
    broker time, so a subject cannot pre-send a gateway's event): it is decided, and a
    request id already granted is refused, so the grant is approved once. Kafka's own
    redelivery (the same record read again after a crash) yields nothing new
    (tests/faults, kill -9: "redelivered")."""
    subject = _subject()
    event = raw_request("r-1", [("db", "prod")], subject=subject)
    await producer.publish(event)
    # Two appends in one millisecond share their broker time, so they are one record to
    # the redelivery memory (event + broker time) and decided once: also safe, but not
    # what this test is about (seen in CI on a quiet machine).
    await asyncio.sleep(0.01)
    await producer.publish(event)
    await producer.publish(raw_request("r-2", [("db2", "prod")], subject=subject, t=1))
    await decisions_for(stack, subject, 3)
    await settle()
    decisions = await decisions_for(stack, subject, 3)
    assert [(d["action"], d["request_id"], d["rule"]["id"]) for d in decisions] == [
        ("approve", "r-1", "auto-approve"), ("deny", "r-1", "request-id-reused"),
        ("approve", "r-2", "auto-approve")]
    assert len({d["decision_id"] for d in decisions}) == 3


async def test_bad_input_goes_to_dead_letters_and_nothing_is_approved(
    stack: Stack, producer: Producer
) -> None:
    subject = _subject()
    good = raw_request("r-ok", [("db", "prod")], subject=subject)
    wrong_type = {**good, "event_id": "e-wrong", "resources": "everything"}
    bad: list[tuple[bytes | None, bytes | None, str]] = [
        (subject.encode(), b"{definitely not json", "invalid-json"),
        (subject.encode(), orjson.dumps(wrong_type), "schema-violation"),
        (None, orjson.dumps({**good, "event_id": "e-nokey"}), "missing-key"),
        (subject.encode(), b'{"pad": "' + b"x" * 70_000 + b'"}', "oversized"),
        (b"someone-else", orjson.dumps({**good, "event_id": "e-mismatch"}), "key-mismatch"),
    ]
    sent = {}
    for key, value, error_class in bad:
        partition, offset = await producer.raw(key, value)
        sent[(partition, offset)] = (key, value, error_class)
    await producer.publish(good)  # the worker keeps going after bad input

    def ours(message: Any) -> Any:
        headers = dict(message.headers)
        coordinates = (int(headers["source.partition"]), int(headers["source.offset"]))
        if headers["source.topic"].decode() != stack.requests or coordinates not in sent:
            return None
        return coordinates, message.key, message.value, headers

    dead = await read_topic(stack.deadletter, ours, len(bad))
    for coordinates, key, value, headers in dead:
        sent_key, sent_value, error_class = sent[coordinates]
        assert (key, value) == (sent_key, sent_value), "original bytes must be kept"
        assert headers["error.class"].decode() == error_class
        assert headers["error.message"]

    [decision] = await decisions_for(stack, subject, 1)
    assert (decision["action"], decision["request_id"]) == ("approve", "r-ok")
    await settle()
    assert len(await decisions_for(stack, subject, 1)) == 1


async def test_every_decision_reaches_the_audit_trail(
    stack: Stack, producer: Producer, redis_client: aioredis.Redis
) -> None:
    subject = _subject()
    await producer.publish(raw_request("r-1", [("db", "prod")], subject=subject))
    await producer.publish(raw_request("r-2", [("db", "prod"), ("x", "research")],
                                       subject=subject, t=1))
    decisions = await decisions_for(stack, subject, 2)
    wanted = {d["decision_id"] for d in decisions}
    found: set[str] = set()
    for _ in range(100):
        for partition in range(int(stack.env["JITWATCH_TOPIC_PARTITIONS"])):
            entries = await redis_client.xrange(stream_key(stack.audit_prefix, partition))
            for _entry_id, fields in entries:
                found.add(orjson.loads(fields[b"decision"])["decision_id"])
        if wanted <= found:
            break
        await settle()
    assert wanted <= found


def test_worker_and_sink_still_running(stack: Stack,
                                       audit_sink: subprocess.Popen[bytes]) -> None:
    assert stack.worker is not None
    assert stack.worker.poll() is None, "worker exited"
    assert audit_sink.poll() is None, "audit sink exited"


async def test_state_is_co_partitioned_with_its_input(stack: Stack, producer: Producer) -> None:
    """Every changelog write lands on the partition of the input it belongs to, even when
    one batch mixes partitions."""
    subjects = [_subject() for _ in range(12)]
    placed = {}
    for number, subject in enumerate(subjects):
        partition, _ = await producer.publish(
            raw_request(f"r-{number}", [("db", "prod")], subject=subject))
        placed[subject.encode()] = partition
    for subject in subjects:
        await decisions_for(stack, subject, 1)
    assert len(set(placed.values())) > 1, "test needs subjects on several partitions"

    changelog = f"{stack.env['JITWATCH_APP_ID']}-grants-changelog"

    def ours(message: Any) -> Any:
        return (message.key, message.partition) if message.key in placed else None

    writes = await read_topic(changelog, ours, len(placed))
    assert {key: partition for key, partition in writes} == placed


async def test_restarted_worker_recovers_state_from_the_changelog(
    stack: Stack, producer: Producer, logs: Any, tmp_path: Any,
) -> None:
    subject = _subject()
    await producer.publish(raw_request("r-1", [("a", "prod"), ("b", "prod")], subject=subject))
    await producer.publish(raw_request("r-2", [("c", "prod")], subject=subject, t=1))
    await decisions_for(stack, subject, 2)
    await settle()  # let the worker commit its offsets

    # A new data directory: the state can only come back from the changelog topic.
    stack.restart_worker(logs, JITWATCH_DATA_DIR=str(tmp_path / "fresh"))
    await producer.publish(raw_request("r-3", [("d", "prod")], subject=subject, t=2))
    decisions = await decisions_for(stack, subject, 4, timeout_s=120)
    assert [(d["action"], d["targets"]) for d in decisions] == [
        ("approve", []), ("approve", []), ("approve", []), ("revoke", ["r-1"]),
    ]
