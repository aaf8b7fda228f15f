"""A worker stopped (SIGTERM) while it starts exits cleanly: `-k batch-handoff` run alone
restarted the session's worker right after starting it, and it died of the signal
(returncode -15, "worker did not stop cleanly")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO
from tests.processes import handles_sigterm, wait_handles_sigterm


def test_a_worker_stopped_while_it_starts_exits_0(tmp_path: Path) -> None:
    # No broker answers on port 1: the start waits for one (broker_answers), as a worker
    # on a loaded machine spends seconds before faust runs.
    env = {**os.environ, "JITWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1",
           "JITWATCH_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_handles_sigterm(process)
        assert handles_sigterm(process.pid), process.communicate(timeout=60)[0]
        process.terminate()
        assert process.wait(timeout=60) == 0, process.communicate()[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
