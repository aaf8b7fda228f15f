"""``request.reviewed``: a human decides a pending request, if they may and signed it.

Issue H: a review whose signature does not verify over the pending request's digest is
denied (``review-signature``) and changes nothing else, neither deciding nor locking the
request: the reviewer it names is unverified. Only a validly signed self-approval locks.
"""

from __future__ import annotations

from datetime import timedelta

from policy.handlers.request import approve, clamped, now_seen
from policy.identities import listed, same_identity
from policy.ledger import Ledger, resource_ids
from policy.reviews import review_signature_problem
from policy.rules import Rule, combine, displacements
from policy.rules.locks import REQUEST_LOCKED, SUBJECT_LOCKED
from policy.rules.review import (
    REVIEW_APPROVED,
    REVIEW_DENIED,
    REVIEW_NOT_PENDING,
    REVIEW_SELF_APPROVAL,
    REVIEW_SIGNATURE,
    REVIEWER_NOT_ALLOWED,
)
from schemas._base import format_time
from schemas.events import RequestReviewed
from schemas.policy import TenantPolicy
from schemas.policy_catalog import label

__all__ = ["on_review"]


def on_review(ledger: Ledger, event: RequestReviewed,
              tenant: TenantPolicy) -> dict[str, object]:
    """Decide a review; returns the state fields it changed beyond the ledger's."""
    waiting = ledger.waiting(event.request_id)
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
    envs = {label(resource.env) for resource in waiting.resources}  # stored as sent before H
    allowed = all(any(listed(event.reviewer.id, group.ids)
                      and (not group.envs or env in group.envs)
                      for group in tenant.step_up.reviewers) for env in envs)
    if not allowed:
        ledger.deny(event.request_id, ids, REVIEWER_NOT_ALLOWED,
                    f"{event.reviewer.id} may not review requests for "
                    f"{', '.join(sorted(envs))}; it stays pending")
        return {}
    if problem is not None:
        _unverified(ledger, event, ids, problem)
        return {}
    # Counted once: the request leaves pending now, its id is remembered (it cannot come
    # back), and these signed bytes are remembered until the skew check refuses them.
    if not ledger.remember_signed(event, tenant.time.max_skew_s, event.request_id, ids):
        return {}
    ledger.pending.remove(waiting)
    if event.outcome == "denied":
        ledger.deny(event.request_id, ids, REVIEW_DENIED, f"denied by {event.reviewer.id}")
        return {}
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
    approve(ledger, event.request_id, waiting.resources, ledger.now, waiting.ttl_s, tenant,
            REVIEW_APPROVED, f"approved by {event.reviewer.id}; granted for "
            f"{waiting.ttl_s} s{clamped(waiting.ttl_s, waiting.requested_ttl_s)}")
    return now_seen(ledger, waiting.resources)


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
