"""Redis killed with -9 and started again five times while the audit sink appends (issue
E): afterwards the audit trail holds exactly the decisions topic, record for record, and
the decisions equal simulate's."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from streams.audit import stream_key
from tests.faults import harness
from tests.faults.test_broker_restart import stack_command
from tests.integration.conftest import REDIS_URL, Stack

pytestmark = pytest.mark.integration


async def audit_trail_problems(stack: Stack) -> list[str]:
    """How the Redis audit trail differs from the decisions topic (empty: it verifies).

    The layout of streams/audit.py: one stream per decisions partition, entry id
    ``0-<offset + 1>``, fields offset, key and decision. When issue D's ``jitwatch audit
    verify`` lands, this is the one place to call it instead.
    """
    topic: dict[int, list[tuple[bytes, bytes, bytes, bytes]]] = {}
    for message in await harness.read_all(stack.decisions):
        topic.setdefault(message.partition, []).append(
            (f"0-{message.offset + 1}".encode(), str(message.offset).encode(),
             message.key or b"", message.value))
    client = aioredis.Redis.from_url(REDIS_URL)
    problems = []
    try:
        for partition in sorted(topic):
            entries = await client.xrange(stream_key(stack.audit_prefix, partition))
            trail = [(entry_id, fields[b"offset"], fields[b"key"], fields[b"decision"])
                     for entry_id, fields in entries]
            if trail != topic[partition]:
                missing = len(set(topic[partition]) - set(trail))
                extra = len(set(trail) - set(topic[partition]))
                problems.append(f"partition {partition}: topic {len(topic[partition])} "
                                f"records, trail {len(trail)} entries, {missing} missing, "
                                f"{extra} extra or different")
    finally:
        await client.aclose()
    return problems


async def test_redis_killed_five_times_audit_trail_equals_topic(
        stack: Stack, logs: Path, tmp_path: Path) -> None:
    count = harness.env_int("JITWATCH_FAULTS_EVENTS", 4000)
    kills = harness.env_int("JITWATCH_FAULTS_REDIS_KILLS", 5)
    started = time.monotonic()
    events = harness.load(count, uuid.uuid4().hex[:6], seed=19)
    expectation = harness.expected(events)
    rng = random.Random()
    with harness.scenario_stack(stack, "redis", tmp_path, logs) as (run, log_dir):
        await harness.publish(run, harness.event_records(events))
        worker = run.start("worker", log_dir)
        sink = run.start("audit-sink", log_dir)
        for point in sorted(rng.uniform(0.05, 0.95) for _ in range(kills)):
            await harness.wait_decisions(run, int(point * len(expectation[0])))
            await asyncio.to_thread(stack_command, "kill", "redis")
            await asyncio.sleep(rng.uniform(0.5, 3))
            await asyncio.to_thread(stack_command, "up")
        await harness.workers_drained(run)
        waited = await harness.drained(run.env["JITWATCH_AUDIT_GROUP"], [run.decisions],
                                       quiet_s=3)
        assert worker.poll() is None, f"worker exited; see {log_dir}"
        assert sink.poll() is None, f"audit sink exited; see {log_dir}"
        outcome = await harness.check(run, events, expectation)
        outcome.problems += await audit_trail_problems(run)
    harness.finish("redis-kill", outcome, events=count, faults=kills, started=started,
           detail=f"audit trail equals the decisions topic, sink drained {waited:.0f} s after")
