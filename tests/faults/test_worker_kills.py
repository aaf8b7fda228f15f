"""kill -9 a worker at random points during a load decided by two workers (issue E), the
load of :mod:`tests.faults.mixed` (both input topics, approving reviews, live deadlines).

Each kill strikes while the group has inputs not yet committed (the count is printed per
kill) and is followed, after up to two seconds, by a restart on the same data directory
(RocksDB as the killed process left it). Afterwards, with the group drained: no input
without its verdicts, no duplicate or conflicting verdict after dedupe by ``decision_id``,
and the grant table equal to simulate's. Sizes: ``JITWATCH_FAULTS_EVENTS`` and
``JITWATCH_FAULTS_KILLS`` (the issue's 100,000 and 20 under ``ops/faults`` and CI).
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.faults import harness, mixed
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration


async def test_kill_9_workers_at_random_points(stack: Stack, logs: Path,
                                               tmp_path: Path) -> None:
    count = harness.env_int("JITWATCH_FAULTS_EVENTS", 4000)
    kills = harness.env_int("JITWATCH_FAULTS_KILLS", 3)
    started = time.monotonic()
    rng = random.Random()
    with harness.scenario_stack(stack, "kill9", tmp_path, logs) as (run, log_dir):
        group, inputs = run.env["JITWATCH_APP_ID"], harness.input_topics(run)

        def start(name: str) -> subprocess.Popen[bytes]:
            return run.start("worker", log_dir, JITWATCH_DATA_DIR=str(tmp_path / name))

        workers = {name: start(name) for name in ("a", "b")}

        async def kill(_: int) -> int:
            name = rng.choice(["a", "b"])
            await asyncio.sleep(rng.uniform(0.1, 0.6))  # a random point of the segment
            in_flight = await harness.in_flight_now(group, inputs)
            workers[name].send_signal(signal.SIGKILL)
            workers[name].wait(timeout=30)
            await asyncio.sleep(rng.uniform(0, 2))
            workers[name] = start(name)
            return in_flight

        events, hits = await mixed.drive(
            run, count, kills, kill, lambda: harness.drained(group, inputs, quiet_s=0),
            tag=uuid.uuid4().hex[:6], seed=rng.randrange(1 << 30))
        waited = await harness.workers_drained(run)
        for name, worker in workers.items():
            assert worker.poll() is None, f"worker {name} exited; see {log_dir}"
        outcome = await harness.check(run, events)
    harness.finish("kill-9", outcome, events=len(events), faults=kills, started=started,
                   hits=hits, detail=f"2 workers, drained {waited:.0f} s after the last kill")
