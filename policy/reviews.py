"""Signed reviews: a review counts only with a valid Ed25519 signature by a listed key,
over the exact request it decides.

Pure: the keys come from the policy (``step_up.reviewer_keys``), nothing is read here; the
check itself is policy.signed's, shared with operators' releases.

**The request digest.** When a request escalates, the watcher stores
:func:`request_digest` of its ``request.created`` with the pending request: lowercase hex
SHA-256 of the canonical JSON (policy.signed: sorted keys, no whitespace) of::

    {"break_glass": ..., "request_id": ..., "resources": [{"env", "id", "roles": [...],
     "sensitivity"}, ...], "schema": "jit.request-digest/v1", "subject": <subject.id>,
     "tenant": ..., "ttl_s": <as sent, or null>}

with the resources in the order sent and as validated (a missing sensitivity is ``high``,
missing roles ``[]``). A request id used again for other resources gets another digest.

**The signed bytes** (``jit.review-signature/v2``): the canonical JSON of::

    {"at": <RFC 3339 UTC, "Z", ms only when not zero>, "event_id": ..., "key_id": ...,
     "outcome": ..., "request_digest": <the digest above>, "request_id": ...,
     "reviewer": <reviewer.id>, "schema": "jit.review-signature/v2",
     "subject": <subject.id>, "tenant": ...}

so a signature cannot be moved to another event, request, subject, tenant or outcome, nor
to the same request id asking for something else. ``request_digest`` in the signed bytes
is always the watcher's stored digest, never a value the review event carries.
``jit.review-signature/v1`` (without the digest) is no longer accepted, for approvals or
denials; a request stored pending before digests were kept has none, so no review decides
it: it ends when its pending time runs out, or is withdrawn and asked again.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy.signatures import sign
from policy.signed import canonical_message, signature_problem
from schemas._base import format_time
from schemas.events import RequestCreated, RequestReviewed
from schemas.policy import TenantPolicy

__all__ = ["DIGEST_SCHEMA", "SIGNATURE_SCHEMA", "request_digest", "review_message",
           "review_signature_problem", "sign_review"]

SIGNATURE_SCHEMA = "jit.review-signature/v2"
DIGEST_SCHEMA = "jit.request-digest/v1"


def request_digest(event: RequestCreated) -> str:
    """The digest a review of ``event`` signs (hex SHA-256 of its canonical encoding)."""
    return hashlib.sha256(canonical_message(DIGEST_SCHEMA, {
        "subject": event.subject.id,
        "tenant": event.tenant,
        "request_id": event.request_id,
        "resources": [{"id": resource.id, "env": resource.env,
                       "sensitivity": resource.sensitivity, "roles": list(resource.roles)}
                      for resource in event.resources],
        "ttl_s": event.ttl_s,
        "break_glass": event.break_glass,
    })).hexdigest()


def review_message(event: RequestReviewed, key_id: str, digest: str) -> bytes:
    """The exact bytes a reviewer signs for ``event`` with key ``key_id``, deciding the
    request whose :func:`request_digest` is ``digest``."""
    return canonical_message(SIGNATURE_SCHEMA, {
        "at": format_time(event.at),
        "event_id": event.event_id,
        "key_id": key_id,
        "outcome": event.outcome,
        "request_digest": digest,
        "request_id": event.request_id,
        "reviewer": event.reviewer.id,
        "subject": event.subject.id,
        "tenant": event.tenant,
    })


def sign_review(event: RequestReviewed, key_id: str, private_key: Ed25519PrivateKey,
                digest: str) -> str:
    """The base64 signature to put in the review's ``signature`` field."""
    return base64.b64encode(sign(private_key, review_message(event, key_id, digest))).decode()


def review_signature_problem(event: RequestReviewed, tenant: TenantPolicy,
                             digest: str | None) -> str | None:
    """Why the review must not count (a reason after "unverified reviewer X: "), or None.

    Approvals and denials alike need a valid signature over ``digest``, the pending
    request's stored digest; None (a request stored before digests) verifies nothing.
    """
    what = (f"the {'approval' if event.outcome == 'approved' else 'denial'} of "
            f"{event.request_id}")
    if digest is None:
        return (f"{what} cannot be verified: request {event.request_id} was stored before "
                "reviews were bound to their request (no digest), so no review decides it")
    return signature_problem(what, event.reviewer.id, event.key_id, event.signature,
                             tenant.step_up.reviewer_keys,
                             lambda key_id: review_message(event, key_id, digest))
