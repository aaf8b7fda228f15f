"""Test-only reviewer keys (Ed25519, derived from public seeds): never use them for real.

``reviewer_key(id)`` gives a reviewer's key; ``signed(raw_review)`` adds ``key_id`` and
``signature`` to a raw ``request.reviewed`` dict; ``policy_keys_toml(ids)`` the policy lines
listing the public keys.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from policy import sign_review
from schemas.events import INPUT_EVENT, RequestReviewed


def reviewer_key(reviewer: str, generation: int = 1) -> tuple[str, Ed25519PrivateKey]:
    """(key_id, private key) of a test reviewer; ``generation`` rotates it."""
    seed = hashlib.sha256(f"jitwatch test reviewer {reviewer} {generation}".encode()).digest()
    return f"{reviewer.split('@')[0]}-test-{generation}", Ed25519PrivateKey.from_private_bytes(seed)


def public_b64(private: Ed25519PrivateKey) -> str:
    """Base64 of the raw public key, as the policy lists it."""
    return base64.b64encode(private.public_key().public_bytes(Encoding.Raw,
                                                              PublicFormat.Raw)).decode()


def signed(raw: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    """``raw`` (a request.reviewed dict) signed by its reviewer's test key."""
    key_id, private = reviewer_key(raw["reviewer"]["id"], generation)
    event = INPUT_EVENT.validate_python({**raw, "key_id": key_id})
    assert isinstance(event, RequestReviewed)
    return {**raw, "key_id": key_id, "signature": sign_review(event, key_id, private)}


def policy_keys(reviewers: list[str], generation: int = 1) -> list[dict[str, str]]:
    """``step_up.reviewer_keys`` entries for the test reviewers."""
    entries = []
    for reviewer in reviewers:
        key_id, private = reviewer_key(reviewer, generation)
        entries.append({"reviewer": reviewer, "key_id": key_id, "public_key": public_b64(private)})
    return entries


def policy_keys_toml(section: str, reviewers: list[str], generation: int = 1) -> str:
    """TOML array-of-tables lines ``[[<section>.reviewer_keys]]`` for the test reviewers."""
    return "".join(
        f'\n[[{section}.reviewer_keys]]\nreviewer = "{entry["reviewer"]}"\n'
        f'key_id = "{entry["key_id"]}"\npublic_key = "{entry["public_key"]}"\n'
        for entry in policy_keys(reviewers, generation))
