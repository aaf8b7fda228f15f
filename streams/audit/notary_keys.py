"""The notary's key pair on disk: made once by ``jitwatch audit keygen``, read by the notary
(the private key, refused when others can read it). Apart from :mod:`streams.audit.notary`
so the signing loop's module holds the loop."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy import signatures
from schemas.errors import ConfigError
from streams.audit.keyring import another_kind_of_key

__all__ = ["generate_keys", "load_private_key"]


def generate_keys(directory: Path, keep_existing: bool = False) -> tuple[Path, Path]:
    """Write a new key pair ``notary.key`` (mode 0600) and ``notary.pub``; never overwrites.
    With ``keep_existing``, a complete pair already there is returned as it is."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / "notary.key", directory / "notary.pub"
    if keep_existing and private_path.is_file() and public_path.is_file():
        return private_path, public_path
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path} exists; keys are never overwritten (move it away first)")
    key = Ed25519PrivateKey.generate()
    pem = signatures.private_key_pem(key)
    # O_EXCL with mode 0600: the private key is never readable by others, not even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(signatures.public_key_pem(key.public_key()))
    return private_path, public_path


def load_private_key(path: Path | None) -> Ed25519PrivateKey:
    """The notary's signing key; refuses a file others can read."""
    if path is None:
        raise ConfigError("the notary needs JITWATCH_AUDIT_SIGNING_KEY_FILE (make a key pair "
                          "with `jitwatch audit keygen --out DIR`)")
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"JITWATCH_AUDIT_SIGNING_KEY_FILE {path} is readable by others "
                              f"(mode {stat.S_IMODE(mode):o}); chmod 600 it")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read JITWATCH_AUDIT_SIGNING_KEY_FILE {path}: "
                          f"{exc.strerror}") from exc
    not_pem = f"JITWATCH_AUDIT_SIGNING_KEY_FILE {path} is not a PEM private key"
    # The notary's key file is PEM only (the raw-seed form signatures also reads never was
    # one); text before the PEM block is skipped, as the PEM reader always did.
    start = data.find(b"-----BEGIN")
    if start < 0:
        raise ConfigError(not_pem)
    try:
        return signatures.private_key_from_file_bytes(data[start:])
    except ValueError as exc:  # the library's message may quote the file: keep it out
        if another_kind_of_key(exc):
            raise ConfigError(f"JITWATCH_AUDIT_SIGNING_KEY_FILE {path} is not an Ed25519 "
                              "key") from exc
        raise ConfigError(not_pem) from exc

