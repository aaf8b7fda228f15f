"""Issue M's correctness gate: input with offset gaps from a transactional producer.

An upstream producer writes its requests in transactions: each commit leaves a control
record (an offset no consumer is handed) and an aborted transaction leaves its records and
its abort marker. The worker, with faust's per-record hand-off and with the batch hand-off
(``JITWATCH_BATCH_HANDOFF``), must decide every committed record once, never commit past an
input it has not decided (the commit probe), and commit the whole range it fetched: the
group's committed offset reaches each partition's end offset, even when the partition ends
with a control record (consumer lag 0 once drained).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.conftest import BOOTSTRAP, Stack, assign_from_start, read_topic, stop_all
from tests.integration.test_commit_gate import create_topics, gate_env, gate_request, start_probe

pytestmark = [pytest.mark.integration]

TRANSACTIONS = 12
PER_TRANSACTION = 10
ABORTED = 5
"""The transaction (by number) that is aborted instead of committed."""


async def _produce(topic: str, tag: str) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """The transactions; returns each committed request's (partition, offset) by event id,
    and the aborted requests' event ids."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=f"tx-{tag}",
                                enable_idempotence=True)
    await producer.start()
    committed: dict[str, tuple[int, int]] = {}
    aborted: set[str] = set()
    try:
        for number in range(TRANSACTIONS):
            await producer.begin_transaction()
            sent = {}
            for index in range(PER_TRANSACTION):
                request = number * PER_TRANSACTION + index
                key = f"gate-{tag}-{request % 97}".encode()
                sent[f"g-{tag}-{request}"] = await producer.send(topic, gate_request(
                    tag, request), key=key)
            if number == ABORTED:
                await producer.abort_transaction()
                aborted |= set(sent)
                continue
            await producer.commit_transaction()
            for event_id, future in sent.items():
                metadata = await future
                committed[event_id] = (metadata.partition, metadata.offset)
    finally:
        await producer.stop()
    return committed, aborted


async def group_lag(group: str, topic: str) -> dict[int, tuple[int | None, int]]:
    """Each partition of ``topic``: (the group's committed offset, the end offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    await admin.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
        assert partitions, f"no partitions for {topic}"
        tps = [TopicPartition(topic, number) for number in sorted(partitions)]
        ends = await consumer.end_offsets(tps)
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await consumer.stop()
        await admin.close()
    return {tp.partition: (offsets[tp].offset if tp in offsets else None, ends[tp])
            for tp in tps}


async def _causes(topic: str) -> list[str]:
    """The event id each record of ``topic`` (decisions) was caused by, up to its end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    found: list[str] = []
    try:
        await assign_from_start(consumer, topic, time.monotonic() + 30)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                found += [orjson.loads(message.value)["cause"]["event_id"]
                          for message in messages]
    finally:
        await consumer.stop()
    return found


@pytest.mark.parametrize("handoff", [False, True], ids=["per-record", "batch-handoff"])
async def test_transactional_input_is_decided_once_and_fully_committed(
        stack: Stack, tmp_path: Path, handoff: bool) -> None:
    tag = uuid.uuid4().hex[:6]
    env = gate_env(stack, tag, handoff, tmp_path / "data")
    await create_topics(env)
    requests = env["JITWATCH_TOPIC_REQUESTS"]
    report, log = tmp_path / "commits.jsonl", tmp_path / "worker.log"
    worker = start_probe(env, report, log)
    try:
        committed, aborted = await _produce(requests, tag)
        await read_topic(env["JITWATCH_TOPIC_DECISIONS"], lambda message: message.value,
                         len(committed), timeout_s=120)
        deadline, lag = time.monotonic() + 60, await group_lag(env["JITWATCH_APP_ID"], requests)
        while any(done != end for done, end in lag.values()) and time.monotonic() < deadline:
            await asyncio.sleep(1)
            lag = await group_lag(env["JITWATCH_APP_ID"], requests)
        await asyncio.sleep(2)  # anything decided twice, or late
        decided = await _causes(env["JITWATCH_TOPIC_DECISIONS"])
    finally:
        stop_all([worker])
    counts = Counter(decided)
    problems = {
        "not decided once": {event_id: counts[event_id] for event_id in committed
                             if counts[event_id] != 1},
        "aborted but decided": sorted(set(counts) & aborted),
        "(committed, end) short of the end": {partition: pair for partition, pair
                                              in lag.items() if pair[0] != pair[1]}}
    assert not any(problems.values()), problems
    # No commit passed a committed record before its verdict (control records and aborted
    # records are the only offsets a commit may pass undecided).
    records = set(committed.values())
    lines = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    passed = [line for line in lines if line["tp"][0] == requests
              and {(line["tp"][1], offset) for offset in line["missing"]} & records]
    assert not passed, passed[:5]
