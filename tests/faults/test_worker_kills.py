"""kill -9 a worker at random points during a load decided by two workers (issue E).

Each kill is followed, after up to two seconds, by a restart on the same data directory
(RocksDB as the killed process left it). Afterwards, with the group drained: no input
without its verdicts, no duplicate or conflicting verdict after dedupe by ``decision_id``,
and the grant table equal to simulate's. Sizes: ``JITWATCH_FAULTS_EVENTS`` and
``JITWATCH_FAULTS_KILLS`` (the issue's 100,000 and 20 under ``ops/faults`` and CI).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.faults import harness
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration


async def test_kill_9_workers_at_random_points(stack: Stack, logs: Path,
                                               tmp_path: Path) -> None:
    count = harness.env_int("JITWATCH_FAULTS_EVENTS", 4000)
    kills = harness.env_int("JITWATCH_FAULTS_KILLS", 3)
    started = time.monotonic()
    events = harness.load(count, uuid.uuid4().hex[:6])
    expectation = harness.expected(events)
    rng = random.Random()
    with harness.scenario_stack(stack, "kill9", tmp_path, logs) as (run, log_dir):
        await harness.publish(run, harness.event_records(events))

        def start(name: str) -> object:
            return run.start("worker", log_dir, JITWATCH_DATA_DIR=str(tmp_path / name))

        workers = {name: start(name) for name in ("a", "b")}
        # Random points of progress, measured in decisions published (redeliveries count).
        points = sorted(rng.uniform(0.03, 0.97) for _ in range(kills))
        for point in points:
            await harness.wait_decisions(run, int(point * len(expectation[0])))
            name = rng.choice(["a", "b"])
            victim = workers[name]
            victim.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
            victim.wait(timeout=30)  # type: ignore[attr-defined]
            await asyncio.sleep(rng.uniform(0, 2))
            workers[name] = start(name)
        waited = await harness.workers_drained(run)
        for name, worker in workers.items():
            assert worker.poll() is None, f"worker {name} exited; see {log_dir}"  # type: ignore[attr-defined]
        outcome = await harness.check(run, events, expectation)
    harness.finish("kill-9", outcome, events=count, faults=kills, started=started,
           detail=f"2 workers, drained {waited:.0f} s after the last kill")
