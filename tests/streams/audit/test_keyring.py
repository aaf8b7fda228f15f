"""The notary's keyring: checkpoints verify by the key their id names, in its period."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy import signatures
from schemas.errors import ConfigError
from streams.audit.chain import (
    GENESIS,
    ChainEntry,
    ChainVerifier,
    Checkpoint,
    Head,
    checkpoint_digest,
)
from streams.audit.keyring import Keyring

OLD, NEW = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
ROTATED = "2027-01-01T00:00:00Z"


def _chain(count: int) -> list[ChainEntry]:
    entries: list[ChainEntry] = []
    head: Head | None = None
    for offset in range(count):
        entries.append(ChainEntry.after(head, 0, offset, b"k", b'{"n": %d}' % offset))
        head = entries[-1].as_head
    return entries


def _signed(entries: list[ChainEntry], plan: list[tuple[int, Ed25519PrivateKey, str]]
            ) -> list[tuple[bytes, bytes]]:
    out, prev = [], GENESIS
    for seq, key, at in plan:
        payload = Checkpoint(0, entries[seq].as_head, prev, at,
                             signatures.fingerprint(key.public_key())).payload()
        out.append((payload, key.sign(payload).hex().encode()))
        prev = checkpoint_digest(payload)
    return out


def _verify(ring: Keyring, checkpoints: list[tuple[bytes, bytes]],
            entries: list[ChainEntry]) -> ChainVerifier:
    verifier = ChainVerifier(0, ring, checkpoints)
    verifier.feed_all((e.stream_id.encode(), e.to_fields()) for e in entries)
    verifier.finish()
    return verifier


def _keys_file(tmp_path: Path, old_until: str = ROTATED) -> Path:
    (tmp_path / "old.pub").write_bytes(signatures.public_key_pem(OLD.public_key()))
    (tmp_path / "new.pub").write_bytes(signatures.public_key_pem(NEW.public_key()))
    path = tmp_path / "keys.toml"
    path.write_text(f'[[keys]]\nfile = "old.pub"\nvalid_until = "{old_until}"\n\n'
                    f'[[keys]]\nfile = "new.pub"\nvalid_from = "{ROTATED}"\n')
    return path


def test_checkpoints_before_a_rotation_verify_after_it(tmp_path: Path) -> None:
    entries = _chain(6)
    checkpoints = _signed(entries, [(2, OLD, "2026-12-01T00:00:00Z"),
                                    (5, NEW, "2027-02-01T00:00:00Z")])
    for ring in (Keyring.of(OLD.public_key(), NEW.public_key()),
                 Keyring.from_file(_keys_file(tmp_path))):
        verifier = _verify(ring, checkpoints, entries)
        assert verifier.problem is None
        assert verifier.signed_through == 5
    only_old = _verify(Keyring.of(OLD.public_key()), checkpoints, entries).problem
    assert only_old is not None
    assert "not in the keyring" in only_old.what


def test_a_retired_key_signing_after_its_period_is_tampering(tmp_path: Path) -> None:
    """A stolen old key cannot sign on: its checkpoints after the rotation are refused."""
    entries = _chain(4)
    checkpoints = _signed(entries, [(3, OLD, "2027-03-01T00:00:00Z")])
    problem = _verify(Keyring.from_file(_keys_file(tmp_path)), checkpoints, entries).problem
    assert problem is not None
    assert "outside that key's validity period" in problem.what


def test_a_retired_key_backdating_a_checkpoint_after_the_rotation_is_tampering(
    tmp_path: Path
) -> None:
    """Attack (a retired key, leaked after the rotation, and Redis' admin): sign the next
    checkpoint with the old key and an `at` inside its period. Each checkpoint alone is
    good; but a checkpoint's time never goes back behind the one it links to, so the
    backdated one shows (and is refused before any notary anchors it)."""
    entries = _chain(6)
    checkpoints = _signed(entries, [(2, OLD, "2026-12-01T00:00:00Z"),
                                    (4, NEW, "2027-02-01T00:00:00Z"),
                                    (5, OLD, "2026-12-31T23:59:59Z")])
    problem = _verify(Keyring.from_file(_keys_file(tmp_path)), checkpoints, entries).problem
    assert problem is not None
    assert (problem.verdict, problem.seq) == ("tampered", 5)
    assert "checkpoint #2 (seq 5) was signed at 2026-12-31T23:59:59Z, before checkpoint " \
        "#1 it links to (2027-02-01T00:00:00Z)" in problem.what


def test_a_keys_file_that_is_not_one_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "keys.toml"
    bad.write_text("[[keys]]\nvalid_from = 3\n")
    with pytest.raises(ConfigError, match="not a keys file"):
        Keyring.from_file(bad)
    bad.write_text("keys = []\n")
    with pytest.raises(ConfigError, match="lists no key"):
        Keyring.from_file(bad)
