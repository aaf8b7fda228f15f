"""The Kafka broker restarted twice while a worker decides the load of
:mod:`tests.faults.mixed` (issue E): each restart strikes while inputs are in flight (the
count is printed), the worker recovers with no manual step, and nothing is lost or
decided twice."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.faults import harness, mixed
from tests.integration.conftest import Stack
from tests.paths import REPO

pytestmark = pytest.mark.integration

RESTARTS = 2


def stack_command(*args: str) -> None:
    """Run ``ops/stack`` on the stack the tests use (its ports come from the environment)."""
    done = subprocess.run([str(REPO / "ops/stack"), *args], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"ops/stack {' '.join(args)} failed:\n{done.stderr}"


async def test_broker_restarted_twice_during_a_run(stack: Stack, logs: Path,
                                                   tmp_path: Path) -> None:
    count = harness.env_int("JITWATCH_FAULTS_EVENTS", 4000)
    started = time.monotonic()
    outages: list[float] = []
    with harness.scenario_stack(stack, "broker", tmp_path, logs) as (run, log_dir):
        group, inputs = run.env["JITWATCH_APP_ID"], harness.input_topics(run)
        worker = run.start("worker", log_dir)

        async def restart(_: int) -> int:
            await asyncio.sleep(random.uniform(0.1, 0.6))  # a random point of the segment
            in_flight = await harness.in_flight_now(group, inputs)
            began = time.monotonic()
            await asyncio.to_thread(stack_command, "restart", "kafka")
            outages.append(time.monotonic() - began)
            return in_flight

        events, hits = await mixed.drive(
            run, count, RESTARTS, restart, lambda: harness.drained(group, inputs, quiet_s=0),
            tag=uuid.uuid4().hex[:6], seed=random.randrange(1 << 30))
        waited = await harness.workers_drained(run)
        assert worker.poll() is None, f"worker exited; see {log_dir}"
        outcome = await harness.check(run, events)
    harness.finish("broker-restart", outcome, events=len(events), faults=RESTARTS,
                   started=started, hits=hits,
                   detail=f"broker down {', '.join(f'{s:.0f}' for s in outages)} s, "
                          f"drained {waited:.0f} s after")
