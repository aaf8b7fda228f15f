"""Process-wide setup: garbage collector thresholds (every ``jitwatch`` command) and the
worker's claim on its data directory.

CPython's defaults (a young collection every 700 net container allocations, a full one
every 100 young ones) suit small scripts. The worker and the pure core allocate several
hundred containers per event (decoded events, verdicts, state tuples) that almost all die
young, and each full collection walks every live object: measured on this project's
machine (README, Benchmarks), the collector took 19 % of the core's CPU time over 200k
events, and the worker paused 55-80 ms per full collection, several times in a 10 s
run. Larger thresholds make young collections rare (each still short: it walks at most
the young objects) and full ones rarer still; cyclic garbage lives a little longer, which
costs a few MB at most.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import time
from pathlib import Path
from typing import IO

from schemas.errors import ConfigError

__all__ = ["GC_THRESHOLDS", "CoordinatorNotReady", "claim_data_dir", "tune_gc"]

log = logging.getLogger(__name__)

GC_THRESHOLDS = (50_000, 20, 100)
"""Young collection every 50,000 net container allocations; the middle generation every 20
young ones; the full heap every 100 of those (and only when a quarter of it is new)."""


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS` for this process (idempotent)."""
    gc.set_threshold(*GC_THRESHOLDS)


def claim_data_dir(data_dir: Path, wait_s: float = 30.0) -> IO[str]:
    """Lock ``data_dir`` for this worker until the process ends (keep the returned file
    open). Two workers on one directory would fight over its RocksDB files; faust only
    says "DB is locked" and crashes 30 s later. Waits up to ``wait_s`` for a worker that is
    still stopping, then raises :class:`ConfigError` naming the holder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / ".worker.lock").open("a+")
    deadline = time.monotonic() + wait_s
    warned = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            if time.monotonic() >= deadline:
                handle.close()
                raise ConfigError(
                    f"JITWATCH_DATA_DIR {data_dir} is in use by another worker (pid {holder}); "
                    "give each worker its own data directory") from None
            if not warned:  # once, not every second of the wait
                log.warning("JITWATCH_DATA_DIR %s is held by worker pid %s; waiting up to "
                            "%.0f s for it to stop", data_dir, holder, wait_s)
                warned = True
            time.sleep(1.0)
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


class CoordinatorNotReady(logging.Filter):
    """Reports aiokafka's "group coordinator not available" as the warning it is.

    On a fresh cluster the group coordinator (and ``__consumer_offsets``) appear seconds
    after the broker; aiokafka logs every retry meanwhile at ERROR, which reads as a fault
    at each first start. It retries by itself, so here it is a WARNING.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Lower the level of that one message; let every record through."""
        if record.levelno == logging.ERROR and "GroupCoordinatorNotAvailable" in str(
                record.args):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
