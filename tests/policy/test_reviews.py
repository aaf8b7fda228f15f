"""Signed reviews (policy/reviews.py): what a signature binds, and what it does not allow."""

from __future__ import annotations

from typing import Any

import pytest

from policy import request_digest, review_message, review_signature_problem
from schemas.events import RequestCreated, RequestReviewed
from schemas.policy import ReviewerKey, StepUpPolicy, TenantPolicy
from tests.factories import event, raw_event, raw_request
from tests.keys import policy_keys, signed

TENANT = TenantPolicy(step_up=StepUpPolicy(reviewer_keys=tuple(
    ReviewerKey(**entry) for entry in policy_keys(["carol"]) + policy_keys(["carol"], 2))))
ASKED = raw_request("r-1", [{"id": "db/logs", "env": "prod", "sensitivity": "low"}])


def _digest(raw: dict[str, Any]) -> str:
    created = event(raw)
    assert isinstance(created, RequestCreated)
    return request_digest(created)


DIGEST = _digest(ASKED)


def _review(**changes: Any) -> dict[str, Any]:
    return raw_event("request.reviewed", event_id="rev-1", t=5, subject="alice",
                     request_id="r-1", reviewer={"id": "carol"}, outcome="approved") | changes


def _problem(raw: dict[str, Any], digest: str | None = DIGEST) -> str | None:
    review = event(raw)
    assert isinstance(review, RequestReviewed)
    return review_signature_problem(review, TENANT, digest)


def test_signed_reviews_with_either_rotated_key_count() -> None:
    assert _problem(signed(_review(), request=ASKED)) is None
    assert _problem(signed(_review(), 2, request=ASKED)) is None
    assert _problem(signed(_review(outcome="denied"), request=ASKED)) is None


@pytest.mark.parametrize("field", ["event_id", "request_id", "outcome", "tenant", "subject",
                                   "reviewer", "at"])
def test_a_signature_does_not_cover_an_altered_review(field: str) -> None:
    altered = {"event_id": "rev-2", "request_id": "r-2", "outcome": "denied", "tenant": "other",
               "subject": {"id": "mallory"}, "reviewer": {"id": "carol2"},
               "at": "2026-11-23T10:00:06Z"}[field]
    assert _problem(signed(_review(), request=ASKED) | {field: altered}) is not None


@pytest.mark.parametrize("changes", [
    {"resources": [{"id": "db/payments", "env": "prod", "sensitivity": "critical"}]},
    {"resources": [{"id": "db/logs", "env": "prod", "sensitivity": "medium"}]},
    {"resources": [{"id": "db/logs", "env": "prod", "sensitivity": "low",
                    "roles": ["db-admin"]}]},
    {"resources": [{"id": "db/logs", "env": "staging", "sensitivity": "low"}]},
    {"ttl_s": 28800},
    {"break_glass": True},
    {"tenant": "other"},
    {"subject": {"id": "mallory"}},
])
def test_a_signature_binds_what_the_request_asked(changes: dict[str, Any]) -> None:
    other = _digest(ASKED | changes)
    assert other != DIGEST
    problem = _problem(signed(_review(), request=ASKED), other)
    assert problem is not None
    assert "does not verify" in problem


def test_the_digest_is_of_the_resources_as_validated() -> None:
    # A missing sensitivity counts as high, missing roles as none: the same request.
    explicit = ASKED | {"resources": [{"id": "db/x", "env": "prod", "sensitivity": "high",
                                       "roles": []}]}
    implicit = ASKED | {"resources": [{"id": "db/x", "env": "prod"}]}
    assert _digest(explicit) == _digest(implicit)
    assert _digest(ASKED | {"reason": "other words"}) == DIGEST, "reason is not access"


def test_unsigned_reviews_of_either_outcome_are_refused() -> None:
    assert "approval of r-1 is unsigned" in (_problem(_review()) or "")
    assert "denial of r-1 is unsigned" in (_problem(_review(outcome="denied")) or "")


def test_half_signed_and_unknown_keys_are_refused() -> None:
    assert "not both" in (_problem(_review(key_id="carol-test-1")) or "")
    assert "not a key" in (_problem(signed(_review(), request=ASKED)
                                    | {"key_id": "carol-test-9"}) or "")
    assert "does not verify" in (_problem(signed(_review(), request=ASKED)
                                          | {"signature": "not base64!"}) or "")


def test_a_v1_signature_no_longer_counts() -> None:
    import base64

    import orjson

    from policy.signatures import sign
    from schemas._base import format_time
    from tests.keys import reviewer_key

    review = event(_review(key_id="carol-test-1"))
    assert isinstance(review, RequestReviewed)
    v1 = orjson.dumps({"schema": "jit.review-signature/v1", "at": format_time(review.at),
                       "event_id": review.event_id, "key_id": "carol-test-1",
                       "outcome": review.outcome, "request_id": review.request_id,
                       "reviewer": "carol", "subject": "alice", "tenant": "default"},
                      option=orjson.OPT_SORT_KEYS)
    _, private = reviewer_key("carol")
    signature = base64.b64encode(sign(private, v1)).decode()
    assert _problem(_review(key_id="carol-test-1", signature=signature)) is not None
    assert b'"request_digest":"' + DIGEST.encode() in review_message(review, "k", DIGEST)


def test_a_request_stored_without_a_digest_cannot_be_reviewed() -> None:
    problem = _problem(signed(_review(), request=ASKED), None)
    assert problem is not None
    assert "no digest" in problem


def test_listed_keys_match_reviewer_ids_canonically() -> None:
    look_alike = _review(reviewer={"id": "Car\u200bol"})
    assert _problem(signed(look_alike, request=ASKED, key_holder="carol")) is None
