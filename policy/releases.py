"""Signed lock releases: only an operator the policy lists may end a lock early, never on
their own subject.

Pure: the keys come from the policy (``operators``), nothing is read here; the check
itself is policy.signed's, shared with reviews.

**The signed bytes** (``jit.release-signature/v1``): the canonical JSON (sorted keys, no
whitespace) of::

    {"at": <RFC 3339 UTC, "Z", ms only when not zero>, "event_id": ..., "key_id": ...,
     "operator": <by>, "schema": "jit.release-signature/v1", "subject": <subject.id>,
     "target": {"request_id": <or null>, "subject": <or null>}, "tenant": ...}

so a signature releases one event's target on one subject in one tenant, and names the
operator who made it (``by``).
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy.identities import same_identity
from policy.signatures import sign
from policy.signed import canonical_message, signature_problem
from schemas._base import format_time
from schemas.events import LockReleased
from schemas.policy import TenantPolicy

__all__ = ["RELEASE_SCHEMA", "release_message", "release_problem", "sign_release"]

RELEASE_SCHEMA = "jit.release-signature/v1"


def release_message(event: LockReleased, key_id: str) -> bytes:
    """The exact bytes operator ``event.by`` signs for ``event`` with key ``key_id``."""
    return canonical_message(RELEASE_SCHEMA, {
        "at": format_time(event.at),
        "event_id": event.event_id,
        "key_id": key_id,
        "operator": event.by,
        "subject": event.subject.id,
        "target": {"subject": event.target.subject, "request_id": event.target.request_id},
        "tenant": event.tenant,
    })


def sign_release(event: LockReleased, key_id: str, private_key: Ed25519PrivateKey) -> str:
    """The base64 signature to put in the release's ``signature`` field."""
    return base64.b64encode(sign(private_key, release_message(event, key_id))).decode()


def release_problem(event: LockReleased, tenant: TenantPolicy) -> str | None:
    """Why the release must not take effect (one sentence), or None when it may.

    It needs an operator (``by``), a valid signature by one of that operator's listed keys,
    and an operator who is not the subject: a lock on a subject or on one of its requests
    holds against that subject, whatever keys it has.
    """
    if event.by is None:
        return "unverified operator: the release names no operator (by)"
    problem = signature_problem("the release", event.by, event.key_id, event.signature,
                                tenant.operators,
                                lambda key_id: release_message(event, key_id))
    if problem is not None:
        return f"unverified operator {event.by}: {problem}"
    if same_identity(event.by, event.subject.id):
        return f"operator {event.by} is the locked subject and cannot release their own lock"
    return None
