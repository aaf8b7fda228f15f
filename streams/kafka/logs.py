"""aiokafka's log, told in proportion: its narration quieted, a passing state a warning."""

from __future__ import annotations

import logging

__all__ = ["CoordinatorNotReady", "quiet_aiokafka"]


def quiet_aiokafka() -> None:
    """Set up aiokafka's loggers for a ``jitwatch`` command (after logging is configured)."""
    # aiokafka narrates every subscription change at INFO; the worker's own logs suffice.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(CoordinatorNotReady())


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
