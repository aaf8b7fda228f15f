"""Redis killed with -9 and started again five times while the audit sink appends (issue
E): afterwards the audit trail verifies (hash chain, no gaps) and holds exactly the
decisions topic, record for record (`jitwatch audit verify --against-kafka`), and the
decisions equal simulate's."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.faults import harness
from tests.faults.test_broker_restart import stack_command
from tests.integration.conftest import REPO, Stack

pytestmark = pytest.mark.integration


async def audit_trail_problems(stack: Stack) -> list[str]:
    """What ``jitwatch audit verify --against-kafka`` finds wrong (empty: the chain is
    intact and equals the decisions topic record for record). Exit 2 (incomplete) is
    retried for a while: the sink may still be appending the last records."""
    for _ in range(30):
        result = await asyncio.to_thread(
            subprocess.run,
            # No notary runs in this scenario (the chain's equality with the topic under
            # Redis kills is what it shows): unsigned is a note, not a failure, here.
            [sys.executable, "-m", "streams.cli", "audit", "verify", "--against-kafka",
             "--allow-unsigned"],
            cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=300,
            check=False)
        if result.returncode != 2:
            break
        await asyncio.sleep(2)
    if result.returncode == 0:
        return []
    return [f"audit verify exit {result.returncode}: {line}"
            for line in (result.stdout + result.stderr).splitlines()
            if line.strip() and not line.startswith("ok:")][:20]


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
