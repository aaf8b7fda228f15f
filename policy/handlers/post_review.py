"""A break-glass grant's post-review (issue J): a signed ``request.reviewed`` naming the
break-glass request closes its obligation, kept in state after the grant ended.

The reviewer must be allowed for the grant's environments (``step_up.reviewers``), sign
over the break-glass request's digest, and not be the subject. ``approved`` closes it;
``denied`` closes it with ``break_glass.on_rejected`` (a lock for ``break_glass.lock_s``,
which ends the subject's live grants, or nothing more). When no review comes by its due
time, policy.deadlines escalates it (``post-review-overdue``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from policy.identities import listed, same_identity
from policy.ledger import Ledger, resource_ids
from policy.reviews import review_signature_problem
from policy.rules.break_glass import POST_REVIEW_DONE
from policy.rules.review import REVIEW_SELF_APPROVAL, REVIEW_SIGNATURE, REVIEWER_NOT_ALLOWED
from schemas._base import format_time
from schemas.events import RequestReviewed, Resource
from schemas.policy import TenantPolicy
from schemas.policy_catalog import label

__all__ = ["on_post_review", "post_review_owed", "unreviewable_envs"]


def post_review_owed(ledger: Ledger, request_id: str) -> bool:
    """Whether ``request_id`` names an open break-glass post-review."""
    return any(item.request_id == request_id for item in ledger.obligations)


def unreviewable_envs(reviewer: str, resources: Iterable[Resource],
                      tenant: TenantPolicy) -> tuple[str, ...]:
    """The envs of ``resources`` that ``reviewer`` may not review (empty: allowed)."""
    envs = {label(resource.env) for resource in resources}  # stored as sent before H
    return tuple(sorted(env for env in envs if not any(
        listed(reviewer, group.ids) and (not group.envs or env in group.envs)
        for group in tenant.step_up.reviewers)))


def on_post_review(ledger: Ledger, event: RequestReviewed, tenant: TenantPolicy) -> None:
    """Close the obligation ``event.request_id`` names, if this review may."""
    owed = next(item for item in ledger.obligations if item.request_id == event.request_id)
    ids = resource_ids(owed.resources)
    problem = review_signature_problem(event, tenant, owed.request_digest)
    if problem is not None:
        ledger.deny(event.request_id, ids, REVIEW_SIGNATURE,
                    f"unverified reviewer {event.reviewer.id}: {problem}; the post-review "
                    f"of break-glass {event.request_id} stays open")
        return
    if same_identity(event.reviewer.id, event.subject.id):
        ledger.deny(event.request_id, ids, REVIEW_SELF_APPROVAL,
                    f"{event.reviewer.id} cannot review their own break-glass; its "
                    "post-review stays open")
        return
    refused = unreviewable_envs(event.reviewer.id, owed.resources, tenant)
    if refused:
        ledger.deny(event.request_id, ids, REVIEWER_NOT_ALLOWED,
                    f"{event.reviewer.id} may not review {', '.join(refused)}; the "
                    f"post-review of break-glass {event.request_id} stays open")
        return
    if not ledger.remember_signed(event, tenant.time.max_skew_s, event.request_id, ids):
        return
    ledger.obligations.remove(owed)
    late = "" if owed.deadline is not None else f" (it was due at {format_time(owed.due)})"
    if event.outcome == "approved":
        # The reviewer approves what was done: an approve that grants nothing (no
        # resources, no expires_at), so no consumer can read it as access.
        ledger.emit("approve", POST_REVIEW_DONE,
                    f"post-review of break-glass {event.request_id} approved by "
                    f"{event.reviewer.id}{late}; it grants nothing", request_id=event.request_id,
                    targets=(event.request_id,))
        return
    glass = tenant.break_glass
    consequence = "the policy sets no consequence (break_glass.on_rejected = \"none\")"
    if glass.on_rejected == "lock":
        consequence = f"subject locked for {glass.lock_s} s"
    ledger.deny(event.request_id, ids, POST_REVIEW_DONE,
                f"post-review of break-glass {event.request_id} rejected by "
                f"{event.reviewer.id}{late}; {consequence}")
    if glass.on_rejected == "lock":
        ledger.lock_subject(ledger.now + timedelta(seconds=glass.lock_s), POST_REVIEW_DONE,
                            f"break-glass {event.request_id} rejected in post-review by "
                            f"{event.reviewer.id}: locked for {glass.lock_s} s",
                            event.request_id)
