"""Transaction planning: the entries the sink appends, as RESP, without Redis."""

from __future__ import annotations

import orjson
from redis.asyncio.connection import Connection

from streams.audit.chain import GENESIS, ChainEntry, Head
from streams.audit.transactions import (
    POSTINGS_MAX,
    AuditRecord,
    TransactionPlanner,
    index_parts,
    records_after,
)

PREFIX = "jitwatch:t:audit"


def decision(n: int, action: str = "deny") -> bytes:
    return orjson.dumps({"decision_id": f"d-{n}", "at": "2026-11-23T10:00:00.250Z",
                         "subject": {"id": "alice"}, "request_id": f"r-{n}",
                         "action": action, "rule": {"id": "ttl-max"}})


def _arguments(packed: bytes) -> list[bytes]:
    """The arguments of one RESP command (bulk strings only)."""
    lines = packed.split(b"\r\n")
    count = int(lines[0][1:])
    return [lines[2 + 2 * i] for i in range(count)]


def test_each_entry_is_what_the_chain_rules_make_in_one_fcall() -> None:
    records = [AuditRecord(3, offset, b"alice" if offset else None, decision(offset))
               for offset in (4, 5)]
    made = TransactionPlanner(PREFIX).plan(3, None, records)
    [call] = made.commands
    keys = [f"{PREFIX}:p3".encode(),
            *(f"{PREFIX}:ix:{f}".encode() for f in ("subject", "request", "action", "rule"))]
    head: Head | None = None
    entries: list[bytes] = []
    for record in records:
        entry = ChainEntry.after(head, 3, record.offset, record.key or b"", record.value)
        entries += [entry.stream_id.encode(), *entry.to_fields().values()]
        head = entry.as_head
    arguments = _arguments(call)
    assert arguments[:11 + len(entries)] == [
        b"FCALL", b"jitwatch_audit_append", b"5", *keys, b"-1", b"", b"2", *entries]
    assert call == b"".join(Connection().pack_command(*arguments))
    assert made.head == head
    assert made.entries == 2
    assert made.expected == b":2\r\n"


def test_the_indexes_follow_the_entries_with_postings_split() -> None:
    records = [AuditRecord(0, offset, b"k", decision(offset)) for offset in
               range(42, 42 + POSTINGS_MAX + 1)]
    made = TransactionPlanner(PREFIX).plan(0, Head(9, 41, "ab" * 32), records)
    arguments = _arguments(made.commands[0])
    assert arguments[8:11] == [b"9", b"ab" * 32, b"%d" % len(records)]
    rest = arguments[11 + 8 * len(records):]
    counts = []
    while rest:
        counts.append(int(rest[0]))
        rest = rest[1 + counts[-1]:]
    assert counts == [len(records), len(records), 2, 2]  # actions and rules: 500, then 1
    assert made.head.seq == 9 + len(records)


def test_an_unreadable_decision_is_chained_but_not_indexed() -> None:
    assert index_parts(b"not json") == (b"", 0, (b"", b"", b"", b""))
    assert index_parts(decision(1)) == (b"d-1", 1_795_428_000_000,
                                        (b"alice", b"r-1", b"deny", b"ttl-max"))
    made = TransactionPlanner(PREFIX).plan(0, None, [AuditRecord(0, 0, None, b"not json")])
    assert len(made.commands) == 1
    assert GENESIS.encode() in made.commands[0]


def test_only_records_after_the_head_are_new_once_each() -> None:
    records = [AuditRecord(0, offset, None, b"x") for offset in (3, 4, 5, 5, 6, 2)]
    assert [r.offset for r in records_after(records, Head(0, 4, "h"))] == [5, 6]
    assert [r.offset for r in records_after(records, None)] == [3, 4, 5, 6]
