"""Signed reviews (policy/reviews.py): what a signature binds, and what it does not allow."""

from __future__ import annotations

from typing import Any

import pytest

from policy import SignatureProblem, review_signature_problem
from schemas.events import RequestReviewed
from schemas.policy import ReviewerKey, StepUpPolicy, TenantPolicy
from tests.factories import event, raw_event
from tests.keys import policy_keys, signed

TENANT = TenantPolicy(step_up=StepUpPolicy(reviewer_keys=tuple(
    ReviewerKey(**entry) for entry in policy_keys(["carol"]) + policy_keys(["carol"], 2))))


def _review(**changes: Any) -> dict[str, Any]:
    return raw_event("request.reviewed", event_id="rev-1", t=5, subject="alice",
                     request_id="r-1", reviewer={"id": "carol"}, outcome="approved") | changes


def _refusal(raw: dict[str, Any]) -> SignatureProblem | None:
    review = event(raw)
    assert isinstance(review, RequestReviewed)
    return review_signature_problem(review, TENANT)


def _problem(raw: dict[str, Any]) -> str | None:
    refusal = _refusal(raw)
    return None if refusal is None else refusal.reason


def test_signed_approvals_with_either_rotated_key_count() -> None:
    assert _problem(signed(_review())) is None
    assert _problem(signed(_review(), generation=2)) is None


@pytest.mark.parametrize("field", ["event_id", "request_id", "outcome", "tenant", "subject",
                                   "reviewer", "at"])
def test_a_signature_does_not_cover_an_altered_review(field: str) -> None:
    altered = {"event_id": "rev-2", "request_id": "r-2", "outcome": "denied", "tenant": "other",
               "subject": {"id": "mallory"}, "reviewer": {"id": "carol2"},
               "at": "2026-11-23T10:00:06Z"}[field]
    problem = _problem(signed(_review()) | {field: altered})
    assert problem is not None
    assert "changes nothing" in problem


def test_unsigned_approval_is_refused_but_unsigned_denial_is_not() -> None:
    assert "unsigned" in (_problem(_review()) or "")
    assert _problem(_review(outcome="denied")) is None
    assert _problem(_review(outcome="denied", key_id="carol-test-1", signature="AAAA")) \
        is not None


def test_half_signed_and_unknown_keys_are_refused() -> None:
    assert "not both" in (_problem(_review(key_id="carol-test-1")) or "")
    assert "not a key" in (_problem(signed(_review()) | {"key_id": "carol-test-9"}) or "")


def test_only_a_complete_but_invalid_signature_counts_as_forged() -> None:
    # Missing or half-present: what a misconfigured tool sends.
    for raw in (_review(), _review(key_id="carol-test-1"), _review(signature="AAAA")):
        refusal = _refusal(raw)
        assert refusal is not None, raw
        assert not refusal.forged, raw
    # Present but not valid for the reviewer: altered, unlisted key, not base64.
    for raw in (signed(_review()) | {"request_id": "r-2"},
                signed(_review()) | {"key_id": "carol-test-9"},
                signed(_review()) | {"signature": "not base64!"},
                _review(outcome="denied", key_id="carol-test-1", signature="AAAA")):
        refusal = _refusal(raw)
        assert refusal is not None, raw
        assert refusal.forged, raw
