"""Signed reviews: an approval counts only with a valid Ed25519 signature by a listed key.

Pure: the keys come from the policy (``step_up.reviewer_keys``), nothing is read here.

The signed bytes are the review's canonical encoding: the UTF-8 JSON object with exactly
these keys, sorted, no whitespace (``orjson.dumps(..., option=OPT_SORT_KEYS)``)::

    {"at": <RFC 3339 UTC, "Z", ms only when not zero>, "event_id": ..., "key_id": ...,
     "outcome": ..., "request_id": ..., "reviewer": <reviewer.id>,
     "schema": "jit.review-signature/v1", "subject": <subject.id>, "tenant": ...}

Binding ``event_id``, ``at``, the request and the subject means a signature cannot be
moved to another request, subject, tenant or outcome. ``jitwatch review sign`` makes one.

A refused review is *forged* when it carries a complete signature (``key_id`` and
``signature``) that is not valid for its reviewer: an unlisted key, bytes that do not verify,
or no base64 at all. A missing or half-present signature is not forged: that is what a
misconfigured tool sends, and it is refused without suspicion.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy.signatures import public_key_from_b64, sign, verify
from schemas._base import format_time
from schemas.events import RequestReviewed
from schemas.policy import TenantPolicy

__all__ = ["SIGNATURE_SCHEMA", "SignatureProblem", "review_message", "review_signature_problem",
           "sign_review"]

SIGNATURE_SCHEMA = "jit.review-signature/v1"


def review_message(event: RequestReviewed, key_id: str) -> bytes:
    """The exact bytes a reviewer signs for ``event`` with key ``key_id``."""
    return orjson.dumps({
        "schema": SIGNATURE_SCHEMA,
        "at": format_time(event.at),
        "event_id": event.event_id,
        "key_id": key_id,
        "outcome": event.outcome,
        "request_id": event.request_id,
        "reviewer": event.reviewer.id,
        "subject": event.subject.id,
        "tenant": event.tenant,
    }, option=orjson.OPT_SORT_KEYS)


def sign_review(event: RequestReviewed, key_id: str, private_key: Ed25519PrivateKey) -> str:
    """The base64 signature to put in the review's ``signature`` field."""
    return base64.b64encode(sign(private_key, review_message(event, key_id))).decode()


@dataclass(frozen=True, slots=True)
class SignatureProblem:
    """Why a review must not count: ``reason`` is one sentence; ``forged`` says a complete
    signature was given and is not valid (as opposed to missing or half-present)."""

    reason: str
    forged: bool


def review_signature_problem(event: RequestReviewed,
                             tenant: TenantPolicy) -> SignatureProblem | None:
    """Why the review must not count, or None when it may.

    An approval needs a signature; a denial is checked only when it carries one (a denial
    grants nothing, so an unsigned one stays accepted as before).
    """
    if event.signature is None and event.key_id is None:
        if event.outcome != "approved":
            return None
        return SignatureProblem(f"the approval of {event.request_id} by {event.reviewer.id} "
                                "is unsigned; it changes nothing", forged=False)
    if event.signature is None or event.key_id is None:
        return SignatureProblem(f"the review of {event.request_id} by {event.reviewer.id} has "
                                "a key_id or a signature but not both; it changes nothing",
                                forged=False)
    key = next((key for key in tenant.step_up.reviewer_keys
                if key.key_id == event.key_id and key.reviewer == event.reviewer.id), None)
    if key is None:
        return SignatureProblem(f"key {event.key_id!r} is not a key the policy lists for "
                                f"reviewer {event.reviewer.id}; the review of "
                                f"{event.request_id} changes nothing", forged=True)
    try:
        # Validated when the policy loaded; a key that still fails to read is refused
        # the same way as a signature that does not verify.
        public = public_key_from_b64(key.public_key)
    except ValueError:
        public = None
    if public is None or not verify(public, review_message(event, event.key_id),
                                    event.signature):
        return SignatureProblem(f"the signature of {event.reviewer.id}'s review of "
                                f"{event.request_id} does not verify with key "
                                f"{event.key_id!r} (forged or altered); it changes nothing",
                                forged=True)
    return None
