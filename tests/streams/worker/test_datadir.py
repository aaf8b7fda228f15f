"""One worker per data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streams.worker.datadir import claim_data_dir
from tests.paths import REPO


def test_a_data_dir_serves_one_worker_at_a_time(tmp_path: Path) -> None:
    with claim_data_dir(tmp_path / "data"):
        # Another process holds it: a second claim waits, then names the holder.
        second = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; "
             "from streams.worker.datadir import claim_data_dir; "
             f"claim_data_dir(Path({str(tmp_path / 'data')!r}), wait_s=0.5)"],
            capture_output=True, text=True, check=False, cwd=REPO)
        assert second.returncode == 1
        assert f"is in use by another worker (pid {os.getpid()})" in second.stderr
    with claim_data_dir(tmp_path / "data", wait_s=0):  # released with its holder
        pass
