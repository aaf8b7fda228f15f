"""The jitwatch command for what needs no broker: policy check, simulate, schemas."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.cli import main
from tests.factories import raw_request


def test_policy_check_valid_invalid_and_strict(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "policy/default.toml"]) == 0
    out = capsys.readouterr().out
    assert "sha256" in out
    assert "valid (2 warning(s))" in out
    assert main(["policy", "check", "--strict", "policy/default.toml"]) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "x"\n[defaults.caps]\nmax_active_resources = -1\n')
    assert main(["policy", "check", str(bad)]) == 1
    assert "defaults.caps.max_active_resources" in capsys.readouterr().err
    assert main(["policy", "check", str(tmp_path / "missing.toml")]) == 1


def _events(path: Path) -> Path:
    lines = [orjson.dumps(raw_request(f"r-{n}", [(f"x{n}", "prod")], t=n)) for n in range(5)]
    lines.insert(2, b"{not json")
    lines.insert(4, b'{"type": "request.created"}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_simulate_is_byte_identical_and_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _events(tmp_path / "events.jsonl")
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert main(["simulate", "--events", str(events), "--out", str(first)]) == 0
    err = capsys.readouterr().err
    assert f"{events}:3: skipped (invalid-json)" in err
    assert f"{events}:5: skipped (schema-violation)" in err
    assert "5 events, 7 decisions, 2 bad lines skipped" in err
    assert main(["simulate", "--events", str(events), "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    decisions = [orjson.loads(line) for line in first.read_bytes().splitlines()]
    assert [d["action"] for d in decisions].count("approve") == 5
    assert all(d["emitted_at"] == d["at"] and d["cause"]["offset"] is None for d in decisions)


def test_simulate_diff_lists_changed_events(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    events = _events(tmp_path / "events.jsonl")
    strict = tmp_path / "strict.toml"
    strict.write_text('version = "strict"\n[defaults.caps]\nmax_active_resources = 1\n'
                      'max_resources_per_request = 1\nstrategy = "deny_new"\n')
    assert main(["simulate", "--events", str(events), "--diff", str(strict)]) == 0
    captured = capsys.readouterr()
    assert "e-r-1:" in captured.out
    assert "+ deny r-1  [max-active-resources]" in captured.out
    assert "4 of 5 events decide differently under strict" in captured.err


def test_schemas_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "export", "--check"]) == 0


def test_worker_refuses_to_start_on_an_invalid_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "x"\n[defaults.ttl]\nover_max = "ignore"\n')
    # The policy is checked before anything connects to Kafka.
    assert main(["worker", "--policy", str(bad)]) == 2
    assert "defaults.ttl.over_max" in capsys.readouterr().err
