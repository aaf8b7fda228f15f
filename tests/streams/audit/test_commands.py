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


def _export_file(path: Path, signed_at: list[int], entries: int = 4) -> Path:
    """An export of one partition of ``entries`` entries, signed at ``signed_at`` (by the
    test key), exported when the checkpoints were signed."""
    writer = ExportWriter("jitwatch:audit", [0])
    chained = chain(entries)
    lines = [writer.header(datetime(2026, 11, 23, 10, tzinfo=UTC))]
    for payload, sig in sign(chained, signed_at):
        lines.append(writer.checkpoint(0, {b"payload": payload, b"sig": sig}))
    lines += [*writer.entries(0, [(e.stream_id.encode(), e.to_fields()) for e in chained]),
              writer.end()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_an_export_without_checkpoints_is_unsigned_offline_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Attack (Redis' admin): rewrite a chain and delete its checkpoints (the anchor would
    show it, but an export carries no anchor), then let it be exported. Offline verify
    said INTACT ("nothing signed yet"), while Redis' verify says UNSIGNED (exit 2). The
    unsigned limits hold offline as well, as of the export's time."""
    from policy.signatures import public_key_pem
    from tests.streams.audit.test_chain import KEY

    public = tmp_path / "notary.pub"
    public.write_bytes(public_key_pem(KEY.public_key()))
    verify = ["audit", "verify", "--public-key", str(public), "--export"]
    unsigned = str(_export_file(tmp_path / "unsigned.jsonl", []))
    assert main([*verify, unsigned]) == 2
    assert "UNSIGNED: partition 0" in capsys.readouterr().out
    assert main([*verify, unsigned, "--allow-unsigned"]) == 0
    capsys.readouterr()
    signed = str(_export_file(tmp_path / "signed.jsonl", [3]))
    assert main([*verify, signed]) == 0
