"""Test-only reviewer and operator keys (Ed25519, derived from public seeds): never use them
for real.

``reviewer_key(id)`` gives a reviewer's key; ``signed(raw_review, request=raw_request)``
adds ``key_id`` and ``signature`` to a raw ``request.reviewed`` dict, signed over the
digest of the ``request.created`` it decides (``jit.review-signature/v2``);
``policy_keys_toml(section, ids)`` the policy lines listing the public keys.
``operator_key``, ``signed_release`` and ``operator_keys_toml`` do the same for operators
and ``lock.released``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from policy import request_digest, sign_release, sign_review
from schemas.events import INPUT_EVENT, LockReleased, RequestCreated, RequestReviewed


def reviewer_key(reviewer: str, generation: int = 1) -> tuple[str, Ed25519PrivateKey]:
    """(key_id, private key) of a test reviewer; ``generation`` rotates it."""
    seed = hashlib.sha256(f"jitwatch test reviewer {reviewer} {generation}".encode()).digest()
    return f"{reviewer.split('@')[0]}-test-{generation}", Ed25519PrivateKey.from_private_bytes(seed)


def operator_key(operator: str, generation: int = 1) -> tuple[str, Ed25519PrivateKey]:
    """(key_id, private key) of a test operator; ``generation`` rotates it."""
    seed = hashlib.sha256(f"jitwatch test operator {operator} {generation}".encode()).digest()
    return f"{operator.split('@')[0]}-op-{generation}", Ed25519PrivateKey.from_private_bytes(seed)


def public_b64(private: Ed25519PrivateKey) -> str:
    """Base64 of the raw public key, as the policy lists it."""
    return base64.b64encode(private.public_key().public_bytes(Encoding.Raw,
                                                              PublicFormat.Raw)).decode()


def digest_of(request: dict[str, Any]) -> str:
    """The request digest of a raw ``request.created`` (what a review signs)."""
    event = INPUT_EVENT.validate_python(request)
    assert isinstance(event, RequestCreated)
    return request_digest(event)


def signed(raw: dict[str, Any], generation: int = 1, *, request: dict[str, Any] | str,
           key_holder: str | None = None) -> dict[str, Any]:
    """``raw`` (a request.reviewed dict) signed by its reviewer's test key over ``request``
    (the raw request.created it decides, or its digest). ``key_holder`` signs with another
    reviewer's key (a look-alike id, a stolen key)."""
    key_id, private = reviewer_key(key_holder or raw["reviewer"]["id"], generation)
    event = INPUT_EVENT.validate_python({**raw, "key_id": key_id})
    assert isinstance(event, RequestReviewed)
    digest = request if isinstance(request, str) else digest_of(request)
    return {**raw, "key_id": key_id, "signature": sign_review(event, key_id, private, digest)}


def signed_release(raw: dict[str, Any], operator: str | None = None,
                   generation: int = 1) -> dict[str, Any]:
    """``raw`` (a lock.released dict) signed by the test key of ``operator`` (default: its
    ``by``)."""
    key_id, private = operator_key(operator or raw["by"], generation)
    event = INPUT_EVENT.validate_python({**raw, "key_id": key_id})
    assert isinstance(event, LockReleased)
    return {**raw, "key_id": key_id, "signature": sign_release(event, key_id, private)}


def policy_keys(reviewers: list[str], generation: int = 1) -> list[dict[str, str]]:
    """``step_up.reviewer_keys`` entries for the test reviewers."""
    entries = []
    for reviewer in reviewers:
        key_id, private = reviewer_key(reviewer, generation)
        entries.append({"reviewer": reviewer, "key_id": key_id, "public_key": public_b64(private)})
    return entries


def operator_keys(operators: list[str], generation: int = 1) -> list[dict[str, str]]:
    """``operators`` entries for the test operators."""
    entries = []
    for operator in operators:
        key_id, private = operator_key(operator, generation)
        entries.append({"operator": operator, "key_id": key_id, "public_key": public_b64(private)})
    return entries


def policy_keys_toml(section: str, reviewers: list[str], generation: int = 1) -> str:
    """TOML array-of-tables lines ``[[<section>.reviewer_keys]]`` for the test reviewers."""
    return "".join(
        f'\n[[{section}.reviewer_keys]]\nreviewer = "{entry["reviewer"]}"\n'
        f'key_id = "{entry["key_id"]}"\npublic_key = "{entry["public_key"]}"\n'
        for entry in policy_keys(reviewers, generation))


def operator_keys_toml(section: str, operators: list[str], generation: int = 1) -> str:
    """TOML array-of-tables lines ``[[<section>.operators]]`` for the test operators
    (``section``: ``defaults`` or ``tenants.NAME``)."""
    return "".join(
        f'\n[[{section}.operators]]\noperator = "{entry["operator"]}"\n'
        f'key_id = "{entry["key_id"]}"\npublic_key = "{entry["public_key"]}"\n'
        for entry in operator_keys(operators, generation))
