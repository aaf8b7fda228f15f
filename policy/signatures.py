"""Ed25519, once: signing, the one verification and the one key file format.

Reviews, policies and the notary's checkpoints are all signed with Ed25519; every check of
a signature goes through :func:`verify`, so a malformed signature, a wrong key and altered
bytes are refused the same way everywhere (never an exception that a caller forgets).

Key files are PEM: PKCS#8 for a private key, SubjectPublicKeyInfo for a public one (what
``openssl genpkey -algorithm ed25519`` writes too). :func:`private_key_from_file_bytes` also
reads the older ``jitwatch keygen`` file, base64 of the raw 32-byte seed, so keys made before
the formats were joined keep working. Policies list public keys inline as base64 of the raw
32 bytes (:func:`public_key_from_b64`).

Pure: bytes in, keys and answers out; reading and writing files is the caller's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

__all__ = [
    "fingerprint",
    "private_key_from_file_bytes",
    "private_key_pem",
    "public_key_b64",
    "public_key_from_b64",
    "public_key_from_pem",
    "public_key_pem",
    "sign",
    "verify",
]


def sign(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    """The 64-byte signature of ``message``."""
    return private_key.sign(message)


def verify(public_key: Ed25519PublicKey, message: bytes, signature: bytes | str) -> bool:
    """Whether ``signature`` is ``public_key``'s over ``message``.

    A ``str`` signature is base64 (reviews and policies carry it so); anything that is not
    valid base64, or not a valid signature of exactly these bytes, is False.
    """
    if isinstance(signature, str):
        try:
            signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
    try:
        public_key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its raw 32 bytes, as policies and signer files list it.

    Raises:
        ValueError: saying what is wrong with the text.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64 of a raw 32-byte Ed25519 public key") from exc
    if len(raw) != 32:
        raise ValueError(f"{len(raw)} bytes after base64, an Ed25519 public key has 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    """Base64 of the raw public key, the form a policy lists."""
    return base64.b64encode(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """A short stable id of a public key (sha256 of its raw bytes, 16 hex digits)."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """The key file of a private key: unencrypted PKCS#8 PEM (keep it mode 600)."""
    return private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """The key file of a public key: SubjectPublicKeyInfo PEM."""
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def private_key_from_file_bytes(data: bytes) -> Ed25519PrivateKey:
    """The private key in a key file: PEM, or the older base64 of the raw 32-byte seed.

    Raises:
        ValueError: saying which format was expected (never quoting the content).
    """
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError("not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"a PEM {type(key).__name__}, not an Ed25519 private key")
        return key
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("neither a PEM private key nor base64 of a 32-byte seed") from exc
    if len(seed) != 32:
        raise ValueError("neither a PEM private key nor base64 of a 32-byte seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_from_pem(data: bytes) -> Ed25519PublicKey:
    """The public key in a PEM key file.

    Raises:
        ValueError: when it is not an Ed25519 public key in PEM.
    """
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError("not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"a PEM {type(key).__name__}, not an Ed25519 public key")
    return key
