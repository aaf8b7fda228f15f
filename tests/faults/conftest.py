"""Fault scenarios share the integration fixtures (real Kafka and Redis from ops/stack)."""

from __future__ import annotations

from typing import Any

from tests.faults.report import LINES
from tests.integration.conftest import audit_sink, logs, producer, redis_client, stack

__all__ = ["audit_sink", "logs", "producer", "redis_client", "stack"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print every scenario's summary line, even without ``-s``."""
    if LINES:
        terminalreporter.section("fault scenarios")
        for line in LINES:
            terminalreporter.write_line(line)
