"""Transaction planning: the entries the sink appends, as RESP, without Redis."""

from __future__ import annotations

import orjson
from redis.asyncio.connection import Connection

from streams.audit.chain import GENESIS, ChainEntry, Head
from streams.audit.resp import command
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


def test_each_entry_is_the_xadd_of_the_entry_the_chain_rules_make() -> None:
    records = [AuditRecord(3, offset, b"alice" if offset else None, decision(offset))
               for offset in (4, 7)]
    made = TransactionPlanner(PREFIX).plan(3, None, records)
    head: Head | None = None
    for record, planned in zip(records, made.commands, strict=False):
        entry = ChainEntry.after(head, 3, record.offset, record.key or b"", record.value)
        fields = [part for name, value in entry.to_fields().items() for part in (name, value)]
        expected = command(b"XADD", f"{PREFIX}:p3".encode(), entry.stream_id.encode(), *fields)
        assert planned == expected == b"".join(Connection().pack_command(
            b"XADD", f"{PREFIX}:p3".encode(), entry.stream_id.encode(), *fields))
        head = entry.as_head
    assert made.head == head
    assert made.entries == 2
    assert made.expected == b"*%d\r\n$3\r\n0-5\r\n$3\r\n0-8\r\n" % len(made.commands)


def test_the_indexes_are_one_zadd_each_with_postings_split() -> None:
    records = [AuditRecord(0, offset, b"k", decision(offset)) for offset in
               range(POSTINGS_MAX + 1)]
    made = TransactionPlanner(PREFIX).plan(0, Head(9, 41, "ab" * 32), records)
    zadds = made.commands[len(records):]
    assert [c.split(b"\r\n")[4] for c in zadds] == [
        f"{PREFIX}:ix:{field}".encode() for field in ("subject", "request", "action", "rule")]
    action = zadds[2]
    assert action.startswith(b"*6\r\n$4\r\nZADD\r\n")  # two members: 500 offsets, then 1
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
