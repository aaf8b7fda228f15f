"""aiokafka's passing states are logged as what they are."""

from __future__ import annotations

import logging

from streams.kafka.logs import CoordinatorNotReady


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
