"""Process setup shared by every jitwatch command."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.cli import main
from streams.runtime import GC_THRESHOLDS, CoordinatorNotReady, claim_data_dir, tune_gc
from tests.paths import REPO


@pytest.fixture(autouse=True)
def _restore_gc_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's defaults, so the tests see the change
    yield
    gc.set_threshold(*saved)


def test_tune_gc_sets_the_thresholds() -> None:
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.isenabled()


def test_every_command_runs_with_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "policy/default.toml"]) == 0
    assert gc.get_threshold() == GC_THRESHOLDS


def test_a_data_dir_serves_one_worker_at_a_time(tmp_path: Path) -> None:
    with claim_data_dir(tmp_path / "data"):
        # Another process holds it: a second claim waits, then names the holder.
        second = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; "
             "from streams.runtime import claim_data_dir; "
             f"claim_data_dir(Path({str(tmp_path / 'data')!r}), wait_s=0.5)"],
            capture_output=True, text=True, check=False, cwd=REPO)
        assert second.returncode == 1
        assert f"is in use by another worker (pid {os.getpid()})" in second.stderr
    with claim_data_dir(tmp_path / "data", wait_s=0):  # released with its holder
        pass


def test_a_coordinator_not_yet_there_is_a_warning_not_an_error() -> None:
    from aiokafka.errors import GroupCoordinatorNotAvailableError

    record = logging.LogRecord("aiokafka.consumer.group_coordinator", logging.ERROR, "x", 1,
                               "Group Coordinator Request failed: %s",
                               (GroupCoordinatorNotAvailableError(),), None)
    assert CoordinatorNotReady().filter(record)
    assert (record.levelno, record.levelname) == (logging.WARNING, "WARNING")
    other = logging.LogRecord("aiokafka", logging.ERROR, "x", 1, "Heartbeat failed: %r",
                              (RuntimeError("x"),), None)
    assert CoordinatorNotReady().filter(other)
    assert other.levelno == logging.ERROR
