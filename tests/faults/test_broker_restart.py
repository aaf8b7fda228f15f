"""The Kafka broker restarted twice while a worker decides a load (issue E): the worker
recovers with no manual step, and nothing is lost or decided twice."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.faults import harness
from tests.integration.conftest import REPO, Stack

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
    events = harness.load(count, uuid.uuid4().hex[:6], seed=17)
    expectation = harness.expected(events)
    outages = []
    with harness.scenario_stack(stack, "broker", tmp_path, logs) as (run, log_dir):
        await harness.publish(run, harness.event_records(events))
        worker = run.start("worker", log_dir)
        for restart in range(RESTARTS):
            await harness.wait_decisions(run, len(expectation[0]) * (restart + 1) // (RESTARTS + 1))
            began = time.monotonic()
            await asyncio.to_thread(stack_command, "restart", "kafka")
            outages.append(time.monotonic() - began)
        waited = await harness.workers_drained(run)
        assert worker.poll() is None, f"worker exited; see {log_dir}"
        outcome = await harness.check(run, events, expectation)
    harness.finish("broker-restart", outcome, events=count, faults=RESTARTS, started=started,
           detail=f"broker down {', '.join(f'{s:.0f}' for s in outages)} s, "
                  f"drained {waited:.0f} s after")
