"""Offline verification of export files: a cut, pruned or foreign file never passes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from streams.audit.notary import generate_keys, load_private_key
from streams.audit.query import TABLE_HEADER, ExportWriter, Found, format_row
from streams.audit.verify import ExportError, VerifyReport, verify_export
from streams.cli.main import main
from tests.streams.test_audit_chain import KEY, chain, sign

PARTITIONS = [0, 1, 2]


def export_lines(sizes: dict[int, int]) -> list[bytes]:
    """An export of ``PARTITIONS``: ``sizes[p]`` entries in partition p (none when absent),
    each partition signed at its last entry."""
    writer = ExportWriter("jitwatch:audit", PARTITIONS)
    lines = [writer.header(datetime(2026, 11, 23, tzinfo=UTC))]
    for partition in PARTITIONS:
        entries = chain(sizes.get(partition, 0), partition=partition)
        if entries:
            for payload, sig in sign(entries, [len(entries) - 1], partition=partition):
                lines.append(writer.checkpoint(partition, {b"payload": payload, b"sig": sig}))
        lines += writer.entries(partition, [(e.stream_id.encode(), e.to_fields())
                                            for e in entries])
    lines.append(writer.end())
    return lines


def verified(lines: list[bytes]) -> VerifyReport:
    return verify_export(lines, KEY.public_key())


def test_a_whole_export_verifies_and_reports_every_listed_partition() -> None:
    report = verified(export_lines({0: 5, 2: 3}))
    assert report.exit_code == 0
    assert [(p.partition, p.entries, p.checkpoints) for p in report.partitions] == [
        (0, 5, 1), (1, 0, 0), (2, 3, 1)]


@pytest.mark.parametrize("lines", [[], [b""], [b"\n"]])
def test_an_empty_file_is_incomplete(lines: list[bytes]) -> None:
    with pytest.raises(ExportError, match="no export header") as raised:
        verified(lines)
    assert raised.value.verdict == "incomplete"


def test_a_header_alone_is_incomplete_in_every_partition() -> None:
    report = verified(export_lines({0: 5})[:1])
    assert report.exit_code == 2
    assert [p.partition for p in report.partitions if p.problem] == PARTITIONS
    assert "cut short" in str(report.problems[0])


def test_a_file_cut_in_a_partition_is_incomplete_from_there_on() -> None:
    lines = export_lines({0: 5, 1: 4, 2: 3})
    cut = [line for line in lines if b'"partition":2' not in line and b'"kind":"end"' not in line]
    report = verified(cut)
    assert report.exit_code == 2
    assert {p.partition: p.problem is None for p in report.partitions} == {
        0: True, 1: False, 2: False}


def test_a_partition_taken_out_is_tampered() -> None:
    lines = [line for line in export_lines({0: 5, 1: 4, 2: 3})
             if b'"partition":1,' not in line]  # its checkpoint and entries, not the end
    report = verified(lines)
    assert report.exit_code == 1
    assert report.problems[0].partition == 1
    assert "end record says 4 entries" in report.problems[0].what


def test_entries_added_after_a_partitions_last_checkpoint_are_tampered() -> None:
    lines = export_lines({0: 5})
    extra = chain(6)[5]  # what the chain's next entry would be
    writer = ExportWriter("jitwatch:audit", PARTITIONS)
    added = next(writer.entries(0, [(extra.stream_id.encode(), extra.to_fields())]))
    body_end = max(n for n, line in enumerate(lines) if b'"partition":0' in line)
    report = verified([*lines[:body_end + 1], added, *lines[body_end + 1:]])
    assert report.exit_code == 1
    assert "the file holds 6" in report.problems[0].what


@pytest.mark.parametrize(("change", "verdict", "message"), [
    (lambda lines: [*lines, lines[1]], "tampered", "after the end record"),
    (lambda lines: [lines[0].replace(b"export/v2", b"export/v1"), *lines[1:]], "incomplete",
     "export again with this version"),
    (lambda lines: [lines[0], lines[1].replace(b'"partition":0', b'"partition":7'),
                    *lines[2:]], "tampered", "not one the header lists"),
    (lambda lines: [lines[0], b"{not json", *lines[1:]], "tampered", "line 2: not an export"),
    (lambda lines: lines[1:], "incomplete", "not the export header"),
])
def test_a_file_that_is_not_a_whole_export_is_refused(
        change: object, verdict: str, message: str) -> None:
    with pytest.raises(ExportError, match=message) as raised:
        verified(change(export_lines({0: 2})))  # type: ignore[operator]
    assert raised.value.verdict == verdict


def test_the_verify_command_names_the_problem_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public = generate_keys(tmp_path / "keys")
    key = load_private_key(private)
    writer = ExportWriter("jitwatch:audit", [0])
    entries = chain(2)
    payload, sig = sign(entries, [1], key=key)[0]
    lines = [writer.header(datetime(2026, 11, 23, tzinfo=UTC)),
             writer.checkpoint(0, {b"payload": payload, b"sig": sig}),
             *writer.entries(0, [(e.stream_id.encode(), e.to_fields()) for e in entries]),
             writer.end()]
    good, empty = tmp_path / "good.jsonl", tmp_path / "empty.jsonl"
    good.write_bytes(b"\n".join(lines) + b"\n")
    empty.write_bytes(b"")
    verify = ["audit", "verify", "--public-key", str(public), "--export"]
    assert main([*verify, str(good)]) == 0
    assert "INTACT" in capsys.readouterr().out
    assert main([*verify, str(empty)]) == 2
    assert "INCOMPLETE" in capsys.readouterr().err
    assert main([*verify, str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read the export" in capsys.readouterr().err
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps({"event_id": "e-1"}) + b"\n")
    assert main([*verify, str(events)]) == 2  # a first line without "kind"
    assert "not an export file" in capsys.readouterr().err


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
