"""The query table, without Redis."""

from __future__ import annotations

from streams.audit.query import TABLE_HEADER, Found, format_row
from tests.streams.audit.test_chain import chain


def test_query_rows_name_policy_loads_and_line_up_with_the_header() -> None:
    entry = chain(1, partition=4)[0]
    verdict = Found(entry, {"at": "2026-11-23T10:00:00Z", "action": "deny",
                            "subject": {"id": "alice"}, "request_id": "r-1",
                            "rule": {"id": "ttl-max"}})
    load = Found(entry, {"schema": "jit.policy-load/v1", "at": "2026-11-23T10:00:00Z",
                         "outcome": "loaded", "subject": {"id": "jitwatch"},
                         "new": {"version": "2026-11-23.3"}})
    assert format_row(verdict).split() == ["2026-11-23T10:00:00Z", "deny", "alice", "r-1",
                                           "ttl-max", "p4:0@0"]
    assert format_row(load).split()[1:5] == ["policy-load", "jitwatch", "-", "loaded"]
    assert TABLE_HEADER.index("rule") == format_row(verdict).index("ttl-max")
