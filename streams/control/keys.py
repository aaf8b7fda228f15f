"""Key files of the people who sign reviews and policies (``jitwatch keygen``, ``sign``).

The formats are :mod:`policy.signatures`': a new key is written as PKCS#8 PEM, and a file
from before (base64 of the raw 32-byte seed) still reads. The notary's keys are the audit
package's own (``jitwatch audit keygen``).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy.signatures import private_key_from_file_bytes, private_key_pem
from schemas.errors import ConfigError, JitwatchError

__all__ = ["read_private_key", "write_private_key"]


def read_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a key file (PEM, or the older base64 seed).

    Raises:
        ConfigError: naming the file (never its content).
    """
    try:
        return private_key_from_file_bytes(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a key file from `jitwatch keygen` "
                          f"({type(exc).__name__})") from exc


def write_private_key(path: Path) -> Ed25519PrivateKey:
    """Make a new key and write it to ``path`` (PEM, mode 600); never overwrites a file.

    Raises:
        JitwatchError: when ``path`` exists.
    """
    key = Ed25519PrivateKey.generate()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise JitwatchError(f"{path} exists; keys are never overwritten (move it away "
                            "first)") from exc
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_key_pem(key))
    return key
