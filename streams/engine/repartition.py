"""Canonical partition: each subject is decided on one partition, whatever its producer's
partitioner did (issue H, finding 15).

The contract asks producers to partition by murmur2 of the key (the Java and aiokafka
default), but librdkafka's default (``consistent_random``, CRC32: kcat, confluent-kafka,
Fluent Bit) puts most keys elsewhere; deciding a record where it lands would split a
subject's state across partitions, and its expiry tick, sent to the murmur2 partition,
would find no grant there. So the worker checks every input record against
:func:`streams.engine.partitioner.partition_of` of its subject's canonical key
(:func:`streams.engine.codec.subject_key`) over the topics' partition count. A record on
another partition is never decided there: it is forwarded once, unchanged, to the owning
partition of the repartition topic (``<app_id>-repartition``, which only the worker may
write), with its original coordinates and broker time in ``origin.*`` headers, and decided
there in order with that partition's other input (the repartition topic is one more topic
of the worker's single agent, co-partitioned with the inputs and the table). This is what
Kafka Streams' and faust's ``group_by`` repartition topics do.

The headers are trusted only on the repartition topic: on an input topic they are a
producer's claim and never read. A forwarded record still on the wrong partition (the
partition count changed between forward and decision) is a dead letter,
``wrong-partition``, never forwarded again: no record loops.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.errors import InputError
from streams.engine.partitioner import partition_of
from streams.engine.records import LOG_APPEND_TIME, Outbound, Record

__all__ = ["INVALID_FORWARD", "ORIGIN_HEADERS", "WRONG_PARTITION", "Repartition"]

WRONG_PARTITION = "wrong-partition"
"""The dead-letter error class of a forwarded record that is still not on its subject's
partition (the partition count changed): forwarded once, never again."""

INVALID_FORWARD = "invalid-forward"
"""The dead-letter error class of a repartition record without readable ``origin.*``
headers (only the worker writes that topic, so this is a fault, never input)."""

ORIGIN_HEADERS = ("origin.topic", "origin.partition", "origin.offset", "origin.timestamp")
"""The headers of a forwarded record: the input topic, partition and offset it was read
from, and its broker time (LogAppendTime, epoch milliseconds; absent when it had none)."""


@dataclass(frozen=True, slots=True)
class Repartition:
    """The repartition topic's name and the partition count every input topic has."""

    topic: str
    partitions: int

    def owner(self, key: bytes) -> int:
        """The partition that decides the subject of canonical key ``key``."""
        return partition_of(key, self.partitions)

    def origin(self, record: Record) -> Record:
        """The input record ``record`` stands for: itself, or for a record of the
        repartition topic, the original as its headers describe it (same key and value).

        Raises:
            InputError: ``invalid-forward`` when a repartition record's headers are missing
                or unreadable.
        """
        if record.topic != self.topic:
            return record
        found = {name: value for name, value in record.headers if name in ORIGIN_HEADERS}
        try:
            topic = found["origin.topic"].decode("utf-8")
            partition = int(found["origin.partition"])
            offset = int(found["origin.offset"])
            stamp = found.get("origin.timestamp")
            timestamp = None if stamp is None else int(stamp) / 1000
        except (KeyError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            raise InputError(INVALID_FORWARD,
                             f"record of {record.topic} has no readable origin headers "
                             f"({type(exc).__name__}: {exc}); only the worker writes it")\
                from exc
        return Record(topic, partition, offset, record.key, record.value, timestamp,
                      None if timestamp is None else LOG_APPEND_TIME)

    def route(self, record: Record, origin: Record, key: bytes, source: int
              ) -> Outbound | None:
        """None when ``record`` is on the partition that owns canonical ``key``; else the
        forward of ``origin`` to that partition of the repartition topic.

        Raises:
            InputError: ``wrong-partition`` for a record already forwarded once.
        """
        owner = self.owner(key)
        if owner == record.partition:
            return None
        if record.topic == self.topic:
            raise InputError(WRONG_PARTITION,
                             f"forwarded record of {origin.topic}[{origin.partition}]@"
                             f"{origin.offset} is on {record.topic}[{record.partition}] but "
                             f"its subject's partition is {owner} of {self.partitions}; the "
                             "partition count changed? (a record is forwarded only once)")
        headers = [("origin.topic", origin.topic.encode("utf-8")),
                   ("origin.partition", str(origin.partition).encode()),
                   ("origin.offset", str(origin.offset).encode())]
        if origin.timestamp_type == LOG_APPEND_TIME and origin.timestamp is not None:
            headers.append(("origin.timestamp", str(round(origin.timestamp * 1000)).encode()))
        return Outbound(self.topic, record.key, record.value, headers, source=source,
                        partition=owner)
