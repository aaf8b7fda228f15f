"""Notary keys: files only, private key 0600, refusals that name the setting."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from policy.signatures import fingerprint as key_id
from schemas.errors import ConfigError
from streams.audit.notary import Notary, generate_keys, load_private_key, load_public_key


def test_keygen_writes_a_0600_private_key_and_never_overwrites(tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path)
    assert private.stat().st_mode & 0o777 == 0o600
    assert key_id(load_private_key(private).public_key()) == key_id(load_public_key(public))
    with pytest.raises(ConfigError, match="never overwritten"):
        generate_keys(tmp_path)


def test_a_private_key_others_can_read_is_refused(tmp_path: Path) -> None:
    private, _ = generate_keys(tmp_path)
    private.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_private_key(private)


def test_a_missing_or_wrong_key_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JITWATCH_AUDIT_SIGNING_KEY_FILE"):
        load_private_key(None)
    _, public = generate_keys(tmp_path)
    public.chmod(0o600)
    with pytest.raises(ConfigError, match="not a PEM private key"):
        load_private_key(public)
    with pytest.raises(ConfigError, match="--public-key"):
        load_public_key(None)


def test_key_files_are_pem_pkcs8_and_subject_public_key_info(tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path)
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----\n")
    # Text before the PEM block is skipped, as the PEM reader always did.
    private.write_bytes(b"# the notary's key\n" + private.read_bytes())
    assert key_id(load_private_key(private).public_key()) == key_id(load_public_key(public))


def test_the_key_id_in_checkpoints_is_the_raw_keys_sha256_prefix(tmp_path: Path) -> None:
    """Checkpoints already signed name their key so: the id may never change."""
    key = load_private_key(generate_keys(tmp_path)[0])
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    notary = Notary(None, "jitwatch:audit", 1, key, 1, 1.0)  # type: ignore[arg-type]
    assert notary._key_id == hashlib.sha256(raw).hexdigest()[:16] == key_id(key.public_key())


def test_key_files_of_another_kind_are_refused_by_name(tmp_path: Path) -> None:
    other = X25519PrivateKey.generate()
    wrong_private, wrong_public = tmp_path / "x25519.key", tmp_path / "x25519.pub"
    wrong_private.write_bytes(other.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                  NoEncryption()))
    wrong_public.write_bytes(other.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    seed = tmp_path / "seed.key"  # the policy signers' older form, never the notary's
    seed.write_bytes(base64.b64encode(b"\x01" * 32))
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"hello")
    for path in (wrong_private, wrong_public, seed, garbage):
        path.chmod(0o600)
    with pytest.raises(ConfigError, match=r"x25519.key is not an Ed25519 key$"):
        load_private_key(wrong_private)
    with pytest.raises(ConfigError, match=r"x25519.pub is not an Ed25519 public key$"):
        load_public_key(wrong_public)
    for path in (seed, garbage, wrong_public):
        with pytest.raises(ConfigError, match=r"is not a PEM private key$"):
            load_private_key(path)
    for path in (seed, garbage, wrong_private):
        with pytest.raises(ConfigError, match=r"is not a PEM public key$"):
            load_public_key(path)
    with pytest.raises(ConfigError, match="cannot read public key"):
        load_public_key(tmp_path / "missing.pub")
