"""Helpers for tests that start jitwatch processes."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

__all__ = ["handles_sigterm", "wait_handles_sigterm"]

_SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def handles_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has a handler for SIGTERM (Linux: ``SigCgt`` in
    ``/proc/<pid>/status``); False once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & _SIGTERM_BIT)
    return False


def wait_handles_sigterm(process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Wait until ``process`` handles SIGTERM (a stop sent earlier kills it: returncode
    -15), has exited, or ``timeout_s`` passed (then the caller's stop shows what it does)."""
    deadline = time.monotonic() + timeout_s
    while (process.poll() is None and not handles_sigterm(process.pid)
           and time.monotonic() < deadline):
        time.sleep(0.02)
