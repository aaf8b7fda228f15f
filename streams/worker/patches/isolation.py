"""The worker reads its inputs committed only (``isolation_level="read_committed"``).

faust gives its worker consumer ``read_uncommitted`` unless the app itself runs in
transactions. So the records of an upstream producer's aborted transaction were decided
like any other: an aborted request granted (issue M's gate test with a transactional
producer, ``tests/integration/test_transactional_input.py``, both hand-offs), while
``jitwatch tail --inputs`` and so ``simulate`` read committed records only. With this, a
record in an open transaction waits for its commit, and an aborted one is never decided:
aiokafka skips it, and faust's gap bookkeeping covers its offset.

The changelog, the repartition and the commands topics are written without transactions,
so for them nothing changes (their last stable offset is their end offset).
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

__all__ = ["READ_COMMITTED", "install_isolation_fix"]

READ_COMMITTED = "read_committed"

_unfixed: dict[str, Any] = {}


def _create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
    consumer = _unfixed["create_worker_consumer"](self, transport)
    # Read by aiokafka when the consumer starts (its fetcher), which faust does later.
    consumer._isolation_level = READ_COMMITTED  # noqa: SLF001 - no setter; see above
    return consumer


def install_isolation_fix() -> None:
    """Make faust's worker consumer read committed records only (idempotent)."""
    if _unfixed:
        return
    thread = AIOKafkaConsumerThread
    _unfixed["create_worker_consumer"] = thread._create_worker_consumer  # noqa: SLF001
    thread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]  # noqa: SLF001
