"""The worker's claim on its data directory (its RocksDB tables)."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from typing import IO

from schemas.errors import ConfigError

__all__ = ["claim_data_dir"]

log = logging.getLogger(__name__)


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
