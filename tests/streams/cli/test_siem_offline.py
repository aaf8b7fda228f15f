"""``jitwatch siem --from FILE`` (offline, no Kafka) and ``jitwatch report`` on files: the
commands' edges (the mapping and the figures are tested in tests/streams/engine)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.cli.main import main
from tests.paths import REPO
from tests.streams.engine.test_ocsf import _valid

CASE = REPO / "tests" / "golden" / "post-review-done"


def test_siem_from_a_file_prints_one_valid_event_per_decision(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["siem", "--from", str(CASE / "decisions.jsonl")]) == 0
    lines = capsys.readouterr().out.splitlines()
    decisions = (CASE / "decisions.jsonl").read_bytes().splitlines()
    assert len(lines) == len(decisions)
    for line, decision in zip(lines, decisions, strict=True):
        event = orjson.loads(line)
        _valid(event)
        assert event["metadata"]["uid"] == orjson.loads(decision)["decision_id"]


def test_siem_reports_unreadable_lines(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "d.jsonl"
    source.write_bytes((CASE / "decisions.jsonl").read_bytes() + b'{"action": "approve"}\n')
    assert main(["siem", "--from", str(source)]) == 1
    captured = capsys.readouterr()
    count = len((CASE / "decisions.jsonl").read_bytes().splitlines())
    assert f"skipped line {count + 1}: ValidationError" in captured.err


def test_report_summary_and_tenant(capsys: pytest.CaptureFixture[str]) -> None:
    mixed = REPO / "tests" / "golden" / "_mixed"
    assert main(["report", "--decisions", str(mixed / "decisions.jsonl"),
                 "--tenant", "beta", "--until", "2026-12-01T00:00:00Z"]) == 0
    rows = {line[:34].strip(): line[34:].strip()
            for line in capsys.readouterr().out.splitlines()}
    assert rows["period"] == "the first decision to 2026-12-01T00:00:00+00:00"
    assert rows["grant-hours by subject"].startswith("beta/")
    assert "acme/" not in rows["grant-hours by subject"]


def test_report_refuses_an_empty_period(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--decisions", str(CASE / "decisions.jsonl"),
                 "--since", "2026-12-01T00:00:00Z", "--until", "2026-11-01T00:00:00Z"]) == 2
    assert "--until must be after --since" in capsys.readouterr().err
