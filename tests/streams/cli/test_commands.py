"""The jitwatch command for what needs no broker: policy check, simulate, schemas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.cli.main import main
from tests.factories import raw_request
from tests.paths import REPO


def test_policy_check_valid_invalid_and_strict(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "policy/default.toml"]) == 0
    out = capsys.readouterr().out
    assert "sha256" in out
    assert "valid (2 warning(s))" in out  # issuers and reviewers: site-specific
    assert main(["policy", "check", "--strict", "policy/default.toml"]) == 1
    assert "(--strict fails on warnings)" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "x"\n[defaults.caps]\nmax_active_resources = -1\n')
    assert main(["policy", "check", str(bad)]) == 1
    assert "defaults.caps.max_active_resources" in capsys.readouterr().err
    assert main(["policy", "check", str(tmp_path / "missing.toml")]) == 1


def test_policy_check_strict_fails_without_guard_rails(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # Issue H, finding 14: this passed `--strict` (issuers listed, tenants denied).
    lax = tmp_path / "lax.toml"
    lax.write_text('version = "lax"\nunknown_tenants = "deny"\n[tenants.acme]\n'
                   '[defaults.identity]\nallowed_issuers = { human = ["https://idp"] }\n'
                   'require_attestation = []\n[defaults.ttl]\nmax_s = 31536000\n'
                   '[defaults.step_up]\nfrom_sensitivity = "never"\n'
                   '[[defaults.step_up.reviewers]]\nids = ["bob"]\n'
                   '[defaults.break_glass]\nmax_per_window = 1000000\nwindow_s = 1\n')
    assert main(["policy", "check", "--strict", str(lax)]) == 1
    out = capsys.readouterr().out
    for field in ("ttl.max_s", "step_up.from_sensitivity", "identity.require_attestation",
                  "break_glass.max_per_window", "step_up.reviewer_keys"):
        assert f"warning: defaults.{field}: " in out


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
    assert main(["simulate", "--events", str(events), "--diff", str(strict)]) == 1
    captured = capsys.readouterr()
    assert "e-r-1:" in captured.out
    assert "+ deny r-1  [max-active-resources]" in captured.out
    assert captured.out.startswith("- under 2026-")
    assert "4 of 5 events decide differently under strict (sha256 " in captured.err
    # The same policy text under another name: nothing changes, exit 0.
    same = tmp_path / "same.toml"
    same.write_text(strict.read_text())
    assert main(["simulate", "--events", str(events), "--policy", str(strict),
                 "--diff", str(same)]) == 0
    assert "0 of 5 events" in capsys.readouterr().err


def test_simulate_reads_stdin_for_a_diff_too(tmp_path: Path) -> None:
    """`--events -` gives what the file gives, and `--diff` (two replays) works on it."""
    events = _events(tmp_path / "events.jsonl")
    from_file = subprocess.run(
        [sys.executable, "-m", "streams.cli", "simulate", "--events", str(events),
         "--format", "jsonl"], capture_output=True, check=True)
    piped = subprocess.run(
        [sys.executable, "-m", "streams.cli", "simulate", "--events", "-", "--format",
         "jsonl"], input=events.read_bytes(), capture_output=True, check=True)
    assert piped.stdout == from_file.stdout
    assert b"stdin:3: skipped (invalid-json)" in piped.stderr
    strict = tmp_path / "strict.toml"
    strict.write_text('version = "strict"\n[defaults.caps]\nmax_active_resources = 1\n')
    diff = subprocess.run(
        [sys.executable, "-m", "streams.cli", "simulate", "--events", "-", "--diff",
         str(strict)], input=events.read_bytes(), capture_output=True)
    assert diff.returncode == 1, diff.stderr
    assert b"of 5 events decide differently under strict" in diff.stderr


def test_simulate_strict_fails_on_skipped_lines(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    events = _events(tmp_path / "events.jsonl")  # holds two bad lines
    assert main(["simulate", "--events", str(events), "--format", "jsonl"]) == 0
    assert main(["simulate", "--events", str(events), "--format", "jsonl", "--strict"]) == 1
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert main(["simulate", "--events", str(empty), "--strict"]) == 1
    assert main(["simulate", "--events", str(events), "--until", "2000-01-01T00:00:00Z"]) == 0
    assert "is before the last event" in capsys.readouterr().err
    assert main(["simulate", "--events", str(tmp_path)]) == 2
    assert f"events file {tmp_path} is not a file" in capsys.readouterr().err


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


def test_common_mistakes_end_in_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _events(tmp_path / "events.jsonl")
    missing_dir = tmp_path / "nowhere" / "out.jsonl"
    assert main(["simulate", "--events", str(events), "--out", str(missing_dir)]) == 2
    assert f"jitwatch: {missing_dir}: No such file or directory" in capsys.readouterr().err
    assert main(["keygen", "--out", str(events)]) == 2
    assert "keys are never overwritten" in capsys.readouterr().err
    # Nothing listens on port 1: the command names the address and the setting to change.
    monkeypatch.setenv("JITWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert main(["tail"]) == 2
    err = capsys.readouterr().err
    assert "no Kafka broker answered at 127.0.0.1:1" in err
    assert "JITWATCH_KAFKA_BOOTSTRAP" in err


def test_a_reader_that_stops_early_is_no_error(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"  # decisions well beyond a pipe's 64 KiB buffer
    events.write_bytes(b"\n".join(orjson.dumps(raw_request(f"r-{n}", [(f"x{n}", "prod")], t=n))
                                  for n in range(2000)) + b"\n")
    # As `| head -c 1` does: read one byte, then close the pipe.
    simulate = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "simulate", "--events", str(events),
         "--format", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert simulate.stdout is not None
    assert simulate.stderr is not None
    assert simulate.stdout.read(1) == b"{"
    simulate.stdout.close()
    err = simulate.stderr.read().decode()
    assert simulate.wait(timeout=60) == 141
    assert "Traceback" not in err
    assert "BrokenPipe" not in err


def test_audit_query_refuses_an_unknown_action_and_warns_of_an_unknown_rule(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "query", "--action", "revoked"])
    assert "invalid choice: 'revoked'" in capsys.readouterr().err
    monkeypatch.setenv("JITWATCH_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens
    assert main(["audit", "query", "--action", "REVOKE", "--rule", "max-active"]) == 2
    err = capsys.readouterr().err
    assert "did you mean max-active-resources?" in err
    assert "cannot read the audit trail from Redis at redis://127.0.0.1:1/0" in err


def test_every_setting_is_listed_in_some_commands_help() -> None:
    """A new setting must be placed in a group, or no `--help` would name it."""
    from streams.cli.main import _ENVIRONMENT, _commands, _parser
    from streams.settings import ENVIRONMENT_GROUPS, Settings

    listed = {name for names in ENVIRONMENT_GROUPS.values() for name in names}
    secrets = {name for name in Settings.model_fields
               if name.endswith("_password") and f"{name}_file" in listed}
    assert set(Settings.model_fields) - secrets == listed
    assert {group for groups in _ENVIRONMENT.values() for group in groups} \
        <= set(ENVIRONMENT_GROUPS)
    assert set(_ENVIRONMENT) <= {path for path, _ in _commands(_parser())}


def test_command_help_names_the_variables_it_reads(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "verify", "--help"])
    shown = capsys.readouterr().out
    assert "JITWATCH_VERIFIER_REDIS_USER [unset]" in shown
    assert "JITWATCH_KAFKA_BOOTSTRAP [127.0.0.1:9092]" in shown  # --against-kafka
    assert "JITWATCH_DATA_DIR" not in shown  # the worker's, not the verifier's
    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    assert "JITWATCH_DATA_DIR [.jitwatch-data]" in capsys.readouterr().out


def test_simulate_text_shows_forged_ids_escaped(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A newline in a request id must not add a row, nor an ESC drive the terminal, in the
    text output or in --diff's listing."""
    forged = "r-1\n10:00:00  DENY     mallory                                  r-9"
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(raw_request(
        forged, [("x", "prod"), ("y", "prod")], subject="\x1b[2Kalice\u202e",
        event_id="e-1\n+ approve")))
    assert main(["simulate", "--events", str(events)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "r-1\\n10:00:00  DENY" in out
    strict = tmp_path / "strict.toml"
    strict.write_text('version = "strict"\n[defaults.caps]\nmax_resources_per_request = 1\n')
    assert main(["simulate", "--events", str(events), "--diff", str(strict)]) == 1
    listing = capsys.readouterr().out
    assert "e-1\\n+ approve:" in listing
    assert not any(line.startswith("+ approve") for line in listing.splitlines())


def test_simulate_at_the_end_of_time_reports_and_never_raises(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An expiry whose lock would end past year 9999 is reported on stderr, as the stream
    dead-letters it; --until at the last second of 9999 is no traceback either."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps({
        "type": "session.started", "event_id": "e-1", "at": "9999-12-31T23:59:00Z",
        "subject": {"id": "alice"}, "session_id": "s-1", "request_id": "r-1",
        "resource": "db/a"}) + b"\n")
    assert main(["simulate", "--events", str(events), "--until",
                 "9999-12-31T23:59:59Z"]) == 0
    err = capsys.readouterr().err
    assert "expiry not decided (tick-undecidable)" in err
    assert "1 expiry not decided" in err
    assert main(["simulate", "--events", str(events), "--until", "9999-12-31T23:59:59Z",
                 "--strict"]) == 1
