"""The one Ed25519 verification and key file format (policy/signatures.py)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from policy.signatures import (
    fingerprint,
    private_key_from_file_bytes,
    private_key_pem,
    public_key_b64,
    public_key_from_b64,
    public_key_from_pem,
    public_key_pem,
    sign,
    verify,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = KEY.public_key()


def test_verify_accepts_raw_and_base64_and_refuses_the_rest() -> None:
    signature = sign(KEY, b"message")
    assert verify(PUBLIC, b"message", signature)
    assert verify(PUBLIC, b"message", base64.b64encode(signature).decode())
    assert not verify(PUBLIC, b"messagE", signature)
    assert not verify(PUBLIC, b"message", signature[:-1])
    assert not verify(PUBLIC, b"message", "not base64!")
    other = Ed25519PrivateKey.generate()
    assert not verify(other.public_key(), b"message", signature)


def test_key_files_round_trip_and_the_old_seed_format_still_reads() -> None:
    loaded = private_key_from_file_bytes(private_key_pem(KEY))
    assert public_key_b64(loaded.public_key()) == public_key_b64(PUBLIC)
    seed = base64.b64encode(bytes(range(32))) + b"\n"
    assert public_key_b64(private_key_from_file_bytes(seed).public_key()) == \
        public_key_b64(PUBLIC)
    assert fingerprint(public_key_from_pem(public_key_pem(PUBLIC))) == fingerprint(PUBLIC)
    assert fingerprint(public_key_from_b64(public_key_b64(PUBLIC))) == fingerprint(PUBLIC)


BROKEN_PEM = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("data", [b"", b"short", base64.b64encode(b"x" * 31), BROKEN_PEM])
def test_bad_private_key_files_are_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"PEM|seed"):
        private_key_from_file_bytes(data)


def test_a_pem_key_of_another_algorithm_is_refused() -> None:
    other = X25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                        NoEncryption())
    with pytest.raises(ValueError, match="not an Ed25519"):
        private_key_from_file_bytes(other)
    with pytest.raises(ValueError, match="not a PEM public key"):
        public_key_from_pem(b"junk")


def test_public_keys_from_policies_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="31 bytes"):
        public_key_from_b64(base64.b64encode(b"x" * 31).decode())
    with pytest.raises(ValueError, match="not base64"):
        public_key_from_b64("@@@")
