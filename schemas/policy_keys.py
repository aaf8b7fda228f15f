"""The public keys a policy lists: reviewers' (``step_up.reviewer_keys``) and operators'
(``operators``). Split from schemas/policy.py, which re-exports both; they share the
policy's strict section config and one check of a key's text."""

from __future__ import annotations

import base64
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

__all__ = ["OperatorKey", "ReviewerKey"]

Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def _ed25519_public_key(value: str) -> str:
    """A policy's public key: base64 of the raw 32 bytes of an Ed25519 key."""
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ValueError("not base64; paste the public_key line `jitwatch keygen --out FILE` "
                         "prints") from exc
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return value


class _Key(BaseModel):
    """What every listed key has: its id and its public key, checked once here."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: Name
    public_key: str
    """Base64 of the raw 32-byte Ed25519 public key (``jitwatch keygen --out FILE`` prints one)."""

    _ed25519 = field_validator("public_key")(_ed25519_public_key)


class ReviewerKey(_Key):
    """An Ed25519 public key a reviewer signs reviews with. Several keys of one reviewer
    may be listed at once, so keys rotate without a gap."""

    reviewer: Name
    @property
    def holder(self) -> str:
        """Whose key it is (the signer a signature made with it must name)."""
        return self.reviewer


class OperatorKey(_Key):
    """An Ed25519 public key an operator signs lock releases with (``[[defaults.operators]]``
    or per tenant). An operator may have several keys listed at once; no operator may
    release a lock on their own subject or request."""

    operator: Name
    @property
    def holder(self) -> str:
        """Whose key it is (the ``by`` a release signed with it must name)."""
        return self.operator


