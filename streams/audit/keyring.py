"""The notary's public keys over time: which key may have signed a checkpoint, and when.

A checkpoint names the id of the key that signed it (``key_id``, the key's fingerprint). A
:class:`Keyring` holds every public key the notary has used, each with an optional validity
period, so checkpoints signed before a key rotation still verify after it, and a checkpoint
signed by a retired key after its retirement (a stolen old key) does not. Keys come from
repeatable ``--public-key FILE`` options (valid at any time) or a keys file (TOML)::

    [[keys]]
    file = "notary-2026.pub"            # relative to the keys file
    valid_until = "2027-01-01T00:00:00Z"

    [[keys]]
    file = "notary-2027.pub"
    valid_from = "2027-01-01T00:00:00Z"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from policy import signatures
from schemas.errors import ConfigError

__all__ = ["Keyring", "NotaryKey", "another_kind_of_key", "is_later", "load_public_key",
           "parse_time"]


def load_public_key(path: Path | None) -> Ed25519PublicKey:
    """The notary's public key, for verification."""
    if path is None:
        raise ConfigError("verifying checkpoints needs the notary's public key: "
                          "--public-key FILE or JITWATCH_AUDIT_VERIFY_KEY_FILE")
    try:
        return signatures.public_key_from_pem(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read public key {path}: {exc.strerror}") from exc
    except ValueError as exc:
        if another_kind_of_key(exc):
            raise ConfigError(f"{path} is not an Ed25519 public key") from exc
        raise ConfigError(f"{path} is not a PEM public key") from exc


def another_kind_of_key(exc: ValueError) -> bool:
    """Whether :mod:`policy.signatures` refused a key file that holds a key, just not an
    Ed25519 one: it raises that refusal on its own, and a file it cannot parse from the
    parser's error. Both messages stay what they were (pinned by the notary's tests)."""
    return exc.__cause__ is None


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; one without a zone is UTC. Raises :class:`ValueError`."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def is_later(first: str, second: str) -> bool:
    """Whether checkpoint time ``first`` is after ``second`` (an unreadable one is not)."""
    try:
        return parse_time(first) > parse_time(second)
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class NotaryKey:
    """One public key of the notary and when it was in use (None: unbounded)."""

    public_key: Ed25519PublicKey
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def key_id(self) -> str:
        """What checkpoints signed by this key carry as ``key_id``."""
        return signatures.fingerprint(self.public_key)

    def covers(self, at: datetime) -> bool:
        """Whether the key was in use at ``at``."""
        return (self.valid_from is None or at >= self.valid_from) and \
            (self.valid_until is None or at < self.valid_until)


@dataclass(frozen=True, slots=True)
class Keyring:
    """The notary's public keys by key id."""

    keys: tuple[NotaryKey, ...]

    @classmethod
    def of(cls, *public_keys: Ed25519PublicKey) -> Keyring:
        """Keys valid at any time."""
        return cls(tuple(NotaryKey(key) for key in public_keys))

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        """A keys file (see the module's docstring); :class:`ConfigError` when unreadable."""
        try:
            data = tomllib.loads(path.read_text())
            keys = []
            for item in data["keys"]:
                keys.append(NotaryKey(
                    load_public_key(path.parent / str(item["file"])),
                    parse_time(item["valid_from"]) if "valid_from" in item else None,
                    parse_time(item["valid_until"]) if "valid_until" in item else None))
        except OSError as exc:
            raise ConfigError(f"cannot read the keys file {path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: not a keys file ([[keys]] with file, optional "
                              f"valid_from/valid_until): {exc}") from exc
        if not keys:
            raise ConfigError(f"{path}: the keys file lists no key")
        return cls(tuple(keys))

    def __add__(self, other: Keyring) -> Keyring:
        return Keyring(self.keys + other.keys)

    def check(self, key_id: str, at: str, payload: bytes, signature: bytes) -> str | None:
        """Why a checkpoint's signature is not good (None when it is): its key is not in
        the ring, was not in use at the checkpoint's time, or did not sign these bytes."""
        candidates = [key for key in self.keys if key.key_id == key_id]
        if not candidates:
            known = ", ".join(sorted({key.key_id for key in self.keys})) or "none"
            return (f"signed with key {key_id}, which is not in the keyring (known: {known}; "
                    "add the retired key's public key after a rotation)")
        try:
            when = parse_time(at)
        except ValueError:
            return f"its time {at!r} is not a time"
        in_use = [key for key in candidates if key.covers(when)]
        if not in_use:
            return f"signed at {at} with key {key_id}, outside that key's validity period"
        if not any(_signed_by(key.public_key, payload, signature) for key in in_use):
            return f"signature invalid for key {key_id}"
        return None


def _signed_by(public_key: Ed25519PublicKey, payload: bytes, signature: bytes) -> bool:
    """Whether a checkpoint's stored signature is the key's over ``payload``. Checkpoints
    carry it as hex (the wire format); anything that is not hex is no signature."""
    try:
        raw = bytes.fromhex(signature.decode())
    except ValueError:  # not ASCII (UnicodeDecodeError is a ValueError) or not hex
        return False
    return signatures.verify(public_key, payload, raw)
