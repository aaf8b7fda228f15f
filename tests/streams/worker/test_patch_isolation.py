"""isolation_fix: faust's worker consumer reads committed records only."""

from __future__ import annotations

from typing import Any

import pytest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams.worker.patches import isolation


class _Consumer:
    _isolation_level = "read_uncommitted"  # what faust gives a worker not in transactions


def test_the_worker_consumer_reads_committed(monkeypatch: pytest.MonkeyPatch) -> None:
    def unfixed(self: Any, transport: Any) -> _Consumer:
        return _Consumer()

    isolation.install_isolation_fix()
    monkeypatch.setitem(isolation._unfixed, "create_worker_consumer", unfixed)
    consumer = AIOKafkaConsumerThread._create_worker_consumer(object(), None)  # type: ignore[arg-type]
    assert consumer._isolation_level == isolation.READ_COMMITTED


def test_install_is_idempotent() -> None:
    isolation.install_isolation_fix()
    original = isolation._unfixed["create_worker_consumer"]
    isolation.install_isolation_fix()
    assert isolation._unfixed["create_worker_consumer"] is original
    assert AIOKafkaConsumerThread._create_worker_consumer is isolation._create_worker_consumer
