"""Transaction planning: the sink's records hashed into the RESP of one append.

Pure (no I/O): :class:`TransactionPlanner` links records to a chain head and gives one
``FCALL jitwatch_audit_append`` (the Redis Function of ``ops/audit-functions.lua``) with
each entry and each query index member, and the reply that means all went well;
:mod:`streams.audit.appender` sends it. The function appends only when the chain's head is
still the one the hashes link to, and never trims.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import orjson

from streams.audit.chain import ENTRY_FIELDS, GENESIS, Head, entry_digest, entry_hash_prefix
from streams.audit.keys import (
    INDEXED_FIELDS,
    index_bucket,
    index_key,
    index_member,
    index_place,
    stream_key,
)
from streams.audit.resp import bulk

__all__ = ["APPEND_FUNCTION", "POSTINGS_MAX", "TRANSACTION_ENTRIES", "AuditRecord",
           "Transaction", "TransactionPlanner", "index_parts", "records_after"]

APPEND_FUNCTION = b"jitwatch_audit_append"
"""The Redis Function the sink appends through (``ops/audit-functions.lua``)."""

TRANSACTION_ENTRIES = 250
"""Entries per transaction: small enough that Redis starts appending soon after a flush
begins, the sink waits little for the last one and other clients little behind one EXEC;
large enough that a transaction's fixed cost (head read, one ZADD per index) stays small."""
POSTINGS_MAX = 500
"""Offsets per index member at most (a big batch of one action splits into several)."""


def _entry_template() -> bytes:
    """An entry's arguments of the append function (stream id, then the values of
    :data:`ENTRY_FIELDS`) as RESP, for ``%``: one formatting per entry is the cheapest way
    to pack it (redis-py's packing cost more than Redis' append)."""
    return b"$%d\r\n%b\r\n" + b"".join(
        b"$64\r\n%b\r\n" if name in (b"prev", b"hash") else b"$%d\r\n%b\r\n"
        for name in ENTRY_FIELDS)


_ENTRY_ARGS = 1 + len(ENTRY_FIELDS)
_ENTRY = _entry_template()


class AuditRecord(NamedTuple):
    """One consumed decision record (a tuple: immutable, and built for every record at a
    third of a frozen dataclass's cost)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Transaction:
    """One append's command (``FCALL``) as RESP, and the reply it gives when all goes
    well (the number of entries)."""

    commands: list[bytes]
    expected: bytes
    entries: int
    head: Head


def index_parts(decision: bytes) -> tuple[bytes, int, tuple[bytes, bytes, bytes, bytes]]:
    """The decision id, its time bucket (epoch ms, :func:`index_bucket`) and the subject,
    request, action and rule index values (empty when absent); all empty when the decision
    is unreadable: it is still chained (evidence), just not indexed."""
    try:
        data = orjson.loads(decision)
        get = data.get
        at = get("at")
        subject, rule = get("subject"), get("rule")
        return (str(get("decision_id") or "").encode(),
                index_bucket(int(datetime.fromisoformat(at).timestamp() * 1000)) if at else 0,
                (str(subject.get("id") or "").encode() if subject else b"",
                 str(get("request_id") or "").encode(),
                 str(get("action") or "").encode(),
                 str(rule.get("id") or "").encode() if rule else b""))
    except (orjson.JSONDecodeError, AttributeError, ValueError, TypeError):
        return b"", 0, (b"", b"", b"", b"")


def records_after(records: list[AuditRecord], head: Head | None) -> list[AuditRecord]:
    """The records after ``head`` (the others are replays, checked by
    :meth:`streams.audit.appender.RedisAuditSink.flush`, or duplicates within the batch)."""
    last, fresh = -1 if head is None else head.offset, []
    for record in records:
        if record.offset > last:
            fresh.append(record)
            last = record.offset
    return fresh


class TransactionPlanner:
    """Turns a partition's records into transactions for the chains under one key prefix."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._index_keys = [index_key(prefix, field).encode() for field in INDEXED_FIELDS]

    def plan(self, partition: int, head: Head | None,
             records: list[AuditRecord]) -> Transaction:
        """Hash the records (all after ``head``, in offset order) into one append: the
        expected head, every entry, then per index its members, one per value and time
        bucket."""
        seq, prev = (-1, GENESIS.encode()) if head is None else (head.seq, head.hash.encode())
        parts = [bulk(APPEND_FUNCTION), bulk(b"5"),
                 bulk(stream_key(self._prefix, partition).encode()),
                 *map(bulk, self._index_keys), bulk(b"%d" % seq),
                 bulk(b"" if head is None else prev), bulk(b"%d" % len(records))]
        hashed_partition = entry_hash_prefix(partition)
        # Subjects and requests take one member per entry (few of a batch share a value and
        # second); actions and rules, which have a handful of values, one per value and
        # second: (value, time bucket) -> offsets.
        subjects: list[bytes] = []
        requests: list[bytes] = []
        actions: dict[tuple[bytes, int], list[bytes]] = defaultdict(list)
        rules: dict[tuple[bytes, int], list[bytes]] = defaultdict(list)
        for record in records:
            seq += 1
            key_bytes, value = record.key or b"", record.value
            decision_id, bucket, (subject, request, action, rule) = index_parts(value)
            offset = b"%d" % record.offset
            entry = b"0-%d" % (record.offset + 1)
            number = b"%d" % seq
            digest = entry_digest(hashed_partition, number, offset, key_bytes, decision_id,
                                  value, prev).encode()
            parts.append(_ENTRY % (len(entry), entry, len(number), number, len(offset),
                                   offset, len(key_bytes), key_bytes, len(decision_id),
                                   decision_id, len(value), value, prev, digest))
            place = index_place(bucket, partition, offset)
            if subject:
                subjects.append(subject + place)
            if request:
                requests.append(request + place)
            if action:
                actions[action, bucket].append(offset)
            if rule:
                rules[rule, bucket].append(offset)
            prev = digest
        arguments = 10 + _ENTRY_ARGS * len(records)
        for members in (subjects, requests, *(
                [index_member(found, bucket, partition, offsets[first:first + POSTINGS_MAX])
                 for (found, bucket), offsets in grouped.items()
                 for first in range(0, len(offsets), POSTINGS_MAX)]
                for grouped in (actions, rules))):
            parts.append(bulk(b"%d" % len(members)))
            parts.extend([b"$%d\r\n%b\r\n" % (len(m), m) for m in members])
            arguments += 1 + len(members)
        command = b"*%d\r\n$5\r\nFCALL\r\n%b" % (arguments + 1, b"".join(parts))
        return Transaction([command], b":%d\r\n" % len(records), len(records),
                           Head(seq, records[-1].offset, prev.decode()))
