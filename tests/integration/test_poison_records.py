"""A record with neither key nor value (a tombstone without a key) on an input topic must
not wedge the worker (security: anyone who may write an input topic could stop a
partition).

aiokafka's ``send`` refuses such a record (``Need at least one: key or value``), but its
``create_batch``/``send_batch`` path writes one, as do the Java producer and kcat. The
worker dead-letters it; before, the dead letter kept the original (null, null), its own
producer refused it, the batch failed, and the partition's committed offset never passed
it. Here, with faust's per-record hand-off and the batch hand-off (the batched producer):
the null record is dead-lettered (empty value, ``source.value-null``), the good records
after it on the same partition are decided, and the group's committed offset passes it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.engine.dead_letters import NULL_RECORD, VALUE_NULL_HEADER, VALUE_OMITTED_HEADER
from streams.engine.partitioner import partition_of
from tests.factories import raw_event, raw_request
from tests.integration.conftest import BOOTSTRAP, Producer, Stack, decisions_for, read_topic
from tests.integration.test_transactional_input import group_lag

pytestmark = [pytest.mark.integration]


async def _null_record(topic: str, partition: int) -> int:
    """Write one record with neither key nor value to ``topic[partition]`` as a batch
    (aiokafka's ``send`` would refuse it); returns its offset."""
    client = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await client.start()
    try:
        batch = client.create_batch()
        assert batch.append(key=None, value=None, timestamp=None) is not None
        batch.close()
        metadata = await (await client.send_batch(batch, topic, partition=partition))
    finally:
        await client.stop()
    offset: int = metadata.offset
    return offset


async def _committed_past(stack: Stack, topic: str, partition: int, offset: int,
                          timeout_s: float = 60.0) -> int | None:
    """The group's committed offset of ``topic[partition]`` once it is past ``offset``
    (the last one seen when ``timeout_s`` ran out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        committed, _ = (await group_lag(stack.env["JITWATCH_APP_ID"], topic))[partition]
        if (committed is not None and committed > offset) or time.monotonic() > deadline:
            return committed
        await asyncio.sleep(1)


async def test_a_record_with_neither_key_nor_value_does_not_wedge_its_partition(
        stack: Stack, producer: Producer, handoff: bool) -> None:
    # Both topics in one test: each flag setting restarts the session's worker once (two
    # restarts back to back can stop a worker before it handles SIGTERM).
    for where in ("requests", "sessions"):
        await _null_then_good(stack, producer, where)


async def _null_then_good(stack: Stack, producer: Producer, where: str) -> None:
    subject = f"it-null-{uuid.uuid4().hex[:10]}"
    topic = stack.requests if where == "requests" else stack.env["JITWATCH_TOPIC_SESSIONS"]
    partition = partition_of(subject.encode(),
                             int(stack.env["JITWATCH_TOPIC_PARTITIONS"]))
    if where == "sessions":  # a grant for the session topic's event to end
        await producer.publish(raw_request("r-1", [("db", "prod")], subject=subject))
        await decisions_for(stack, subject, 1)
    null_offset = await _null_record(topic, partition)
    # Good records after it on the same partition (the subject's: murmur2 of its key).
    good = raw_request("r-2", [("db2", "prod")], subject=subject, t=1) \
        if where == "requests" else raw_event("task.completed", t=1, subject=subject,
                                              event_id="t-1", request_id="r-1")
    good_partition, _ = await producer.raw_to(topic, subject.encode(),
                                              orjson.dumps(good))
    assert good_partition == partition

    decisions = await decisions_for(stack, subject, 2 if where == "sessions" else 1)
    assert [d["cause"]["event_id"] for d in decisions][-1] == good["event_id"]

    def ours(message: Any) -> Any:
        headers = dict(message.headers)
        source = (headers["source.topic"].decode(), int(headers["source.partition"]),
                  int(headers["source.offset"]))
        return (message.key, message.value, headers) \
            if source == (topic, partition, null_offset) else None

    [(key, value, headers)] = await read_topic(stack.deadletter, ours, 1)
    assert (key, value) == (None, b"")
    assert headers["error.class"] == NULL_RECORD.encode()
    assert headers[VALUE_NULL_HEADER] == b"true"
    committed = await _committed_past(stack, topic, partition, null_offset)
    assert (committed or 0) > null_offset, \
        f"the group's committed offset {committed} did not pass the null record's " \
        f"{null_offset} on {topic}[{partition}]"
    assert stack.worker is not None
    assert stack.worker.poll() is None, "the worker stopped"



async def test_an_input_record_too_large_to_dead_letter_as_it_is_does_not_wedge(
        stack: Stack, producer: Producer, handoff: bool) -> None:
    # The broker takes input records up to its message.max.bytes (1,048,588 by default);
    # a dead letter goes out whole up to 1,000,000 bytes headers and all (the dead-letter
    # topic keeps the broker's default, whatever the producer sends: DEAD_LETTER_MAX_BYTES).
    # An input record in between cannot be dead-lettered whole.
    subject = f"it-big-{uuid.uuid4().hex[:10]}"
    partition, offset = await producer.raw(subject.encode(), b"x" * 999_900)
    await producer.publish(raw_request("r-1", [("db", "prod")], subject=subject))
    [decision] = await decisions_for(stack, subject, 1)
    assert decision["request_id"] == "r-1"

    def ours(message: Any) -> Any:
        headers = dict(message.headers)
        source = (headers["source.topic"].decode(), int(headers["source.partition"]),
                  int(headers["source.offset"]))
        return (message.key, message.value, headers) \
            if source == (stack.requests, partition, offset) else None

    [(key, value, headers)] = await read_topic(stack.deadletter, ours, 1)
    assert (key, value) == (subject.encode(), b"")
    assert headers["error.class"] == b"oversized"
    assert headers[VALUE_OMITTED_HEADER] == b"999900"
    committed = await _committed_past(stack, stack.requests, partition, offset)
    assert (committed or 0) > offset, (committed, offset)
