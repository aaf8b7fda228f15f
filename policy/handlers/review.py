"""``request.reviewed``: a human decides a pending request, if they may and signed it.

Issue H: a review whose signature does not verify over the pending request's digest is
denied (``review-signature``) and changes nothing else, neither deciding nor locking the
request: the reviewer it names is unverified. Only a validly signed self-approval locks.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from policy.handlers.extension import extend
from policy.handlers.post_review import on_post_review, post_review_owed, unreviewable_envs
from policy.handlers.request import approve, clamped, now_seen
from policy.identities import canonical_id, same_identity
from policy.ledger import Ledger, resource_ids
from policy.reviews import review_signature_problem
from policy.rules import Rule, combine, displacements
from policy.rules.extension import EXTENSION_DENIED
from policy.rules.locks import REQUEST_LOCKED, SUBJECT_LOCKED
from policy.rules.review import (
    REVIEW_APPROVED,
    REVIEW_DENIED,
    REVIEW_NOT_PENDING,
    REVIEW_SELF_APPROVAL,
    REVIEW_SIGNATURE,
    REVIEW_THRESHOLD,
    REVIEWER_NOT_ALLOWED,
)
from schemas._base import format_time
from schemas.events import RequestReviewed
from schemas.policy import TenantPolicy
from schemas.policy_catalog import label
from schemas.state import Pending

__all__ = ["on_review"]


def on_review(ledger: Ledger, event: RequestReviewed,
              tenant: TenantPolicy) -> dict[str, object]:
    """Decide a review; returns the state fields it changed beyond the ledger's."""
    waiting = ledger.waiting(event.request_id)
    if waiting is None and post_review_owed(ledger, event.request_id):
        on_post_review(ledger, event, tenant)
        return {}
    if waiting is None:
        ledger.deny(event.request_id, (), REVIEW_NOT_PENDING,
                    f"request {event.request_id} is not waiting for review; the "
                    f"{event.outcome} review by {event.reviewer.id} changes nothing")
        return {}
    ids = resource_ids(waiting.resources)
    lock = ledger.request_lock(event.request_id)
    if lock is not None:
        ledger.deny(event.request_id, ids, REQUEST_LOCKED,
                    f"request {event.request_id} is locked until {format_time(lock.until)}; "
                    f"the {event.outcome} review by {event.reviewer.id} changes nothing and it "
                    "stays pending")
        return {}
    # Issue H: the reviewer is who the signature shows, over this request's digest
    # (policy/reviews.py); until then the name is a claim, and a claim changes nothing.
    problem = review_signature_problem(event, tenant, waiting.request_digest)
    if same_identity(event.reviewer.id, event.subject.id):
        if problem is not None:
            _unverified(ledger, event, ids, problem)
            return {}
        if not ledger.remember_signed(event, tenant.time.max_skew_s, event.request_id, ids):
            return {}
        ledger.deny(event.request_id, ids, REVIEW_SELF_APPROVAL,
                    f"{event.reviewer.id} cannot review their own request; it stays pending")
        if event.outcome == "approved":
            _lock_reviewed(ledger, event, ids, tenant, REVIEW_SELF_APPROVAL,
                           "self-approval attempt")
        return {}
    if unreviewable_envs(event.reviewer.id, waiting.resources, tenant):
        envs = {label(resource.env) for resource in waiting.resources}
        ledger.deny(event.request_id, ids, REVIEWER_NOT_ALLOWED,
                    f"{event.reviewer.id} may not review requests for "
                    f"{', '.join(sorted(envs))}; it stays pending")
        return {}
    if problem is not None:
        _unverified(ledger, event, ids, problem)
        return {}
    # Counted once: these signed bytes are remembered until the skew check refuses them;
    # the request leaves pending once decided, its id remembered (it cannot come back).
    if not ledger.remember_signed(event, tenant.time.max_skew_s, event.request_id, ids):
        return {}
    if event.outcome == "denied":  # any allowed reviewer's denial ends it
        ledger.pending.remove(waiting)
        ledger.deny(event.request_id, ids, REVIEW_DENIED, f"denied by {event.reviewer.id}")
        return {}
    approvers = _approvers(ledger, event, waiting, ids)
    if approvers is None:
        return {}
    ledger.pending.remove(waiting)
    if ledger.locked_until is not None:
        ledger.deny(event.request_id, ids, SUBJECT_LOCKED,
                    f"subject is locked until {format_time(ledger.locked_until)}")
        return {}
    # What the subject holds may have changed while the request waited: the deny_new
    # strategies are asked again, and combined as for a new request.
    displaced = combine(displacements(ledger.grants, waiting.resources, tenant))
    if displaced is not None:
        ledger.deny(event.request_id, ids, displaced.rule, displaced.reason)
        return {}
    by = f"approved by {', '.join((*approvers[:-1], event.reviewer.id))}"
    if waiting.extends:
        grant = ledger.live(event.request_id)
        if grant is None:
            ledger.deny(event.request_id, ids, EXTENSION_DENIED,
                        f"{by}, but grant {event.request_id} ended while its extension "
                        "waited; ask for a new grant")
        else:
            extend(ledger, grant, waiting.ttl_s, tenant, REVIEW_APPROVED, f"{by} (extension)")
        return {}
    approve(ledger, event.request_id, waiting.resources, ledger.now, waiting.ttl_s, tenant,
            REVIEW_APPROVED, f"{by}; granted for "
            f"{waiting.ttl_s} s{clamped(waiting.ttl_s, waiting.requested_ttl_s)}")
    return now_seen(ledger, waiting.resources)


def _approvers(ledger: Ledger, event: RequestReviewed, waiting: Pending,
               ids: tuple[str, ...]) -> tuple[str, ...] | None:
    """Issue J, ``step_up.approvals``: every approver so far with this one when they are
    enough, else None after recording this approval (``review-threshold``: one still
    missing, or this reviewer approved already, counted once)."""
    reviewer = canonical_id(event.reviewer.id)
    if reviewer in waiting.approvals:
        ledger.deny(event.request_id, ids, REVIEW_THRESHOLD,
                    f"{event.reviewer.id} approved {event.request_id} already; a reviewer "
                    f"counts once, {waiting.needed - len(waiting.approvals)} more approval(s) "
                    "needed; it stays pending")
        return None
    approvers = (*waiting.approvals, reviewer)
    if len(approvers) >= waiting.needed:
        return approvers
    ledger.pending[ledger.pending.index(waiting)] = replace(waiting, approvals=approvers)
    ledger.emit("escalate", REVIEW_THRESHOLD,
                f"approval {len(approvers)} of {waiting.needed} by {event.reviewer.id}; "
                f"waiting for {waiting.needed - len(approvers)} more until "
                f"{format_time(waiting.pending_until)}", request_id=event.request_id,
                resources=ids, expires_at=waiting.pending_until)
    return None


def _unverified(ledger: Ledger, event: RequestReviewed, ids: tuple[str, ...],
                problem: str) -> None:
    """Deny a review whose signature does not verify, and change nothing else: its reviewer
    is only a name a producer wrote, so it neither decides nor locks the request."""
    ledger.deny(event.request_id, ids, REVIEW_SIGNATURE,
                f"unverified reviewer {event.reviewer.id}: {problem}; it changes nothing and "
                f"{event.request_id} stays pending")


def _lock_reviewed(ledger: Ledger, event: RequestReviewed, ids: tuple[str, ...],
                   tenant: TenantPolicy, rule: Rule, attempt: str) -> None:
    """Lock the request its own subject tried to approve with a valid signature (the deny
    is already emitted)."""
    seconds = tenant.locks.request_lock_s
    until = ledger.now + timedelta(seconds=seconds)
    ledger.lock_request(event.request_id, ids, until, rule,
                        f"{attempt} by {event.reviewer.id}: request {event.request_id} "
                        f"locked for {seconds} s, until {format_time(until)}")
