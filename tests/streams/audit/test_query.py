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


def test_query_rows_show_producer_text_escaped() -> None:
    entry = chain(1, partition=0)[0]
    forged = Found(entry, {"at": "2026-11-23T10:00:00Z", "action": "approve",
                           "subject": {"id": "\x1b[1Aalice\u202e"},
                           "request_id": "r-1\n2026-11-23T10:00:01Z deny mallory",
                           "rule": {"id": "auto-approve\r"}})
    row = format_row(forged)
    assert "\n" not in row
    assert "\r" not in row
    assert "\x1b" not in row
    assert "\u202e" not in row
    assert "\\x1b[1Aalice\\u202e" in row
    assert "r-1\\n2026-11-23T10:00:01Z deny mallory" in row
    assert "auto-approve\\r" in row
    loaded = Found(entry, {"schema": "jit.policy-load/v1", "at": "2026-11-23T10:00:00Z",
                           "outcome": "loaded\n", "subject": {"id": "jitwatch"},
                           "new": {"version": "v1\x1b]0;owned\x07"}})
    assert "\x1b" not in format_row(loaded)
    assert "\n" not in format_row(loaded)
