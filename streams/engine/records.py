"""The records the planner reads and writes, as plain data (no Kafka client types).

:mod:`streams.engine.plan` decides with them and :mod:`streams.engine.repartition` forwards
them; both take these from here so neither imports the other's module for a dataclass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["LOG_APPEND_TIME", "Outbound", "Record"]

LOG_APPEND_TIME = 1
"""Kafka's timestamp type of a record stamped by the broker when it appended it (0 is
CreateTime: the producer's claim)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One input record as consumed: coordinates, raw bytes, the record's timestamp
    (seconds since the epoch, as faust gives it) with its Kafka timestamp type, and its
    headers (only read on the repartition topic, which only the worker writes)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    timestamp_type: int | None = None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True, slots=True)
class Outbound:
    """One record to produce; ``source`` is the index of the input record that caused it.
    ``partition`` None lets the producer's partitioner choose (murmur2 of the key)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    source: int = 0
    partition: int | None = None
