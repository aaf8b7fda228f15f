"""Signer key files: written as PEM, and the older base64 seed files still read."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from policy.signatures import public_key_b64, sign, verify
from schemas.errors import ConfigError, JitwatchError
from streams.cli.main import main
from streams.control.keys import read_private_key, write_private_key


def test_keygen_writes_a_pem_key_whose_public_half_it_prints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "signer.key"
    assert main(["keygen", "--out", str(path)]) == 0
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert oct(path.stat().st_mode)[-3:] == "600"
    key = read_private_key(path)
    assert capsys.readouterr().out.strip() == f'public_key = "{public_key_b64(key.public_key())}"'


def test_a_key_file_from_before_pem_still_signs(tmp_path: Path) -> None:
    old = Ed25519PrivateKey.generate()
    seed = old.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    path = tmp_path / "old.key"
    path.write_text(base64.b64encode(seed).decode() + "\n")
    key = read_private_key(path)
    assert verify(old.public_key(), b"policy", sign(key, b"policy"))


def test_keys_are_never_overwritten_and_bad_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "signer.key"
    write_private_key(path)
    with pytest.raises(JitwatchError, match="never overwritten"):
        write_private_key(path)
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    with pytest.raises(ConfigError, match="is not a key file"):
        read_private_key(bad)
