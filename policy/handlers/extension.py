"""``request.extension_requested`` (issue J): more time on a live grant, decided like a
new request for the added time, and the approval of one that waited for review.

An extension never ends the grant it extends: denied, it leaves the grant as it was;
approved, the grant's ``expires_at`` moves (and with it its expiry, ticks and notices).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from policy.handlers.request import approvals_needed, next_notice, rate_window
from policy.ledger import Ledger, resource_ids
from policy.reviews import request_digest
from policy.rules import RequestContext, combine, evaluate_extension, gates
from policy.rules.base import Rule, top_sensitivity
from policy.rules.extension import EXTENSION_APPROVED, EXTENSION_DENIED, check_limit
from policy.rules.lifetime import limits
from schemas._base import format_time
from schemas.events import ExtensionRequested, RequestCreated
from schemas.policy import TenantPolicy
from schemas.state import Grant, Pending

__all__ = ["as_request", "extend", "on_extension_requested"]


def as_request(event: ExtensionRequested, grant: Grant) -> RequestCreated:
    """The new request an extension is evaluated as: the grant's resources for the added
    time. Its :func:`policy.reviews.request_digest` is what a review of the extension signs
    (``break_glass`` false, ``ttl_s`` the time asked to add)."""
    return RequestCreated(type="request.created", event_id=event.event_id, at=event.at,
                          tenant=event.tenant, subject=event.subject,
                          request_id=event.request_id, resources=grant.resources,
                          ttl_s=event.ttl_s, reason=event.reason, ticket=event.ticket)


def on_extension_requested(ledger: Ledger, event: ExtensionRequested,
                           tenant: TenantPolicy) -> dict[str, object]:
    """Decide an extension; returns the state fields it changed beyond the ledger's (the
    rate baseline counts it as a request)."""
    recent = rate_window(ledger, tenant)
    extra: dict[str, object] = {"recent_requests": recent[-(tenant.baseline.max_requests + 1):]}
    request_id = event.request_id
    grant = ledger.live(request_id)
    problem = _refusal(ledger, grant, request_id)
    if problem is not None or grant is None:
        ledger.deny(request_id, resource_ids(grant.resources) if grant else (),
                    EXTENSION_DENIED, problem or "")
        return extra
    _decide(ledger, event, tenant, grant, recent)
    return extra


def _decide(ledger: Ledger, event: ExtensionRequested, tenant: TenantPolicy, grant: Grant,
            recent: tuple[datetime, ...]) -> None:
    request_id, now = event.request_id, ledger.now
    asked = as_request(event, grant)
    requested, max_s = limits(asked, tenant)
    added = min(requested, max_s)
    expires_at = grant.expires_at + timedelta(seconds=added)
    sensitivity = top_sensitivity(grant.resources)
    ctx = RequestContext(ledger, asked, tenant, recent, ())
    findings = gates(ctx) or evaluate_extension(ctx, grant, expires_at, sensitivity)
    verdict = combine(findings)
    ids = resource_ids(grant.resources)
    if verdict is not None and verdict.outcome == "deny":
        ledger.deny(request_id, ids, verdict.rule,
                    f"extension of {request_id} by {added} s: {verdict.reason}")
        if verdict.lock_s:
            ledger.lock_subject(now + timedelta(seconds=verdict.lock_s), verdict.rule,
                                verdict.lock_reason, request_id)
        return
    if verdict is not None:  # escalate: a review approves it (policy.handlers.review)
        pending_until = now + timedelta(seconds=tenant.step_up.pending_ttl_s)
        ledger.pending.append(Pending(request_id, grant.resources, now, pending_until, added,
                                      requested, request_digest(asked),
                                      needed=approvals_needed(grant.resources, tenant),
                                      extends=True))
        ledger.emit("escalate", verdict.rule, f"extension of {request_id} by {added} s: "
                    f"{verdict.reason}; waiting for review until "
                    f"{format_time(pending_until)}", request_id=request_id,
                    targets=(request_id,), resources=ids, expires_at=pending_until)
        return
    extend(ledger, grant, added, tenant, EXTENSION_APPROVED, "no rule objects")


def _refusal(ledger: Ledger, grant: Grant | None, request_id: str) -> str | None:
    """Why the grant of ``request_id`` cannot be extended at all, or None."""
    if grant is None and ledger.locked_until is not None:
        return (f"subject is locked until {format_time(ledger.locked_until)}, which ended its "
                f"grants; {request_id} has no live grant to extend")
    if grant is None:
        return (f"{request_id} has no live grant to extend (it expired, ended or was never "
                "granted); ask for a new grant")
    if grant.post_review:
        return f"{request_id} is a break-glass grant: it is not extended; ask for a new grant"
    if ledger.waiting(request_id) is not None:
        return f"an extension of {request_id} is already waiting for review"
    return None


def extend(ledger: Ledger, grant: Grant, added: int, tenant: TenantPolicy, rule: Rule,
           why: str) -> None:
    """Move ``grant``'s expiry by ``added`` seconds, if its limits still allow (they are
    asked again when a review approves an extension that waited)."""
    expires_at = grant.expires_at + timedelta(seconds=added)
    over = combine(check_limit(grant, expires_at, top_sensitivity(grant.resources), tenant))
    if over is not None:
        ledger.deny(grant.request_id, resource_ids(grant.resources), over.rule,
                    f"extension of {grant.request_id} by {added} s: {over.reason}")
        return
    ledger.extend(grant, expires_at, next_notice(expires_at, tenant, ledger.now), rule,
                  f"{why}; {grant.request_id} extended by {added} s to "
                  f"{format_time(expires_at)} (extension {grant.extensions + 1} of at most "
                  f"{tenant.ttl.max_extensions})")
