"""A worker stopped (SIGTERM) while it starts exits cleanly: `-k batch-handoff` run alone
restarted the session's worker right after starting it, and it died of the signal
(returncode -15, "worker did not stop cleanly")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.paths import REPO

SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def _catches_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & SIGTERM_BIT)
    return False


def test_a_worker_stopped_while_it_starts_exits_0(tmp_path: Path) -> None:
    # No broker answers on port 1: the start waits for one (broker_answers), as a worker
    # on a loaded machine spends seconds before faust runs.
    env = {**os.environ, "JITWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1",
           "JITWATCH_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _catches_sigterm(process.pid):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the worker never handled SIGTERM"
            time.sleep(0.02)
        process.terminate()
        assert process.wait(timeout=60) == 0, process.communicate()[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
