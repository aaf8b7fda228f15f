"""``jitwatch audit ...``: exit codes and messages, without Redis or Kafka."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from streams.audit.notary import generate_keys, load_private_key
from streams.audit.query import ExportWriter
from streams.cli.main import main
from tests.streams.audit.test_chain import chain, sign


def test_keygen_if_missing_keeps_a_pair_already_there(tmp_path: Path) -> None:
    """A container runs `jitwatch audit keygen --if-missing` on every start."""
    assert main(["audit", "keygen", "--out", str(tmp_path), "--if-missing"]) == 0
    first = (tmp_path / "notary.key").read_bytes()
    assert main(["audit", "keygen", "--out", str(tmp_path), "--if-missing"]) == 0
    assert (tmp_path / "notary.key").read_bytes() == first
    assert main(["audit", "keygen", "--out", str(tmp_path)]) == 2


def test_keygen_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "keygen", "--out", str(tmp_path / "keys")]) == 0
    out = capsys.readouterr().out
    assert "notary.key" in out
    assert "PRIVATE KEY" not in out
    assert main(["audit", "keygen", "--out", str(tmp_path / "keys")]) == 2


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
