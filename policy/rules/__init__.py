"""Every rule, the order a new request's checks are asked in, and the one combinator.

A rule lives in exactly one area module (``identity``, ``lifetime``, ...), with its id, its
sentence and, where it judges new requests, its check. This module only puts them in order:

* :data:`RULES`: every rule, in the order it has always been listed;
* :data:`GATES`: checks that end evaluation on their own (locks, the rate baseline);
* :data:`OBJECTIONS` then :data:`ESCALATIONS`: the checks of a request that passed the
  gates. Their order interleaves areas on purpose: the first finding names the verdict and
  the others follow it in this order after "; also: ", so it is part of every decision's
  bytes;
* :data:`SILENT_UNLESS`: checks that can find something only under some settings, so a
  tenant's requests skip them where the settings are absent (:func:`checks_for`);
* :func:`combine`: deny wins, then escalate, then approve. Nothing else decides that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from policy.rules import (
    baseline,
    bounds,
    break_glass,
    caps,
    catalog,
    clock,
    exclusive,
    extension,
    failure,
    identity,
    justification,
    lifecycle,
    lifetime,
    locks,
    review,
    sessions,
    windows,
)
from policy.rules.base import Finding, Outcome, RequestContext, Rule, per_policy, top_rank
from schemas.events import RequestCreated, Resource
from schemas.policy import TenantPolicy
from schemas.state import Grant

__all__ = [
    "AREAS",
    "ESCALATIONS",
    "EXTENSION_ESCALATIONS",
    "EXTENSION_OBJECTIONS",
    "GATES",
    "OBJECTIONS",
    "RULES",
    "SILENT_UNLESS",
    "Check",
    "Finding",
    "Outcome",
    "RequestContext",
    "Rule",
    "checks_for",
    "combine",
    "displacements",
    "evaluate",
    "evaluate_extension",
    "gates",
]

Check = Callable[[RequestContext], tuple[Finding, ...]]
"""One question about a new request; ``()`` when the rule has nothing to say."""

AREAS = (baseline, bounds, break_glass, caps, catalog, clock, exclusive, extension, failure,
         identity, justification, lifecycle, lifetime, locks, review, sessions, windows)
"""Every area module; each rule is defined in exactly one of them."""

RULES: tuple[Rule, ...] = (
    failure.UNKNOWN_TENANT,
    clock.CLOCK_SKEW,
    locks.SUBJECT_LOCKED,
    locks.REQUEST_LOCKED,
    baseline.BASELINE_RATE,
    identity.IDENTITY_ISSUER,
    identity.IDENTITY_ATTESTATION,
    identity.IDENTITY_KIND_MISMATCH,
    identity.IDENTITY_KIND_CHANGED,
    identity.IDENTITY_OWNER,
    lifecycle.REQUEST_ID_REUSED,
    lifecycle.REQUEST_ID_REMEMBERED,
    catalog.RESOURCE_MISMATCH,
    catalog.RESOURCE_UNKNOWN,
    bounds.STATE_LIMIT,
    caps.CAPS_PER_REQUEST,
    caps.MAX_ACTIVE_RESOURCES,
    exclusive.EXCLUSIVE_ENVIRONMENTS,
    justification.JUSTIFICATION_REASON,
    justification.JUSTIFICATION_TICKET,
    lifetime.TTL_MAX,
    break_glass.BREAK_GLASS,
    break_glass.BREAK_GLASS_LIMIT,
    break_glass.BREAK_GLASS_NOT_ALLOWED,
    break_glass.POST_REVIEW_PENDING,
    break_glass.POST_REVIEW_DONE,
    break_glass.POST_REVIEW_OVERDUE,
    windows.TIME_WINDOW,
    review.STEP_UP,
    baseline.BASELINE_NOVEL,
    lifecycle.AUTO_APPROVE,
    review.REVIEW_APPROVED,
    review.REVIEW_DENIED,
    review.REVIEW_NOT_PENDING,
    review.REVIEW_SELF_APPROVAL,
    review.REVIEWER_NOT_ALLOWED,
    review.REVIEW_SIGNATURE,
    review.REVIEW_THRESHOLD,
    extension.EXTENSION_APPROVED,
    extension.EXTENSION_DENIED,
    extension.EXTENSION_LIMIT,
    review.PENDING_EXPIRED,
    lifetime.TTL_EXPIRED,
    lifecycle.REQUEST_WITHDRAWN,
    lifecycle.TASK_COMPLETED,
    sessions.SESSION_WITHOUT_GRANT,
    sessions.SESSION_OUT_OF_SCOPE,
    locks.LOCK_RELEASED,
    locks.RELEASE_NOT_AUTHORIZED,
    locks.LOCK_EXPIRED,
    failure.EVALUATION_ERROR,
)
"""Every rule the core can fire: gates, then objections, escalations, approvals and ends."""


def displacements(grants: list[Grant], resources: tuple[Resource, ...],
                  tenant: TenantPolicy) -> list[Finding]:
    """Objections of ``deny_new`` strategies: granting ``resources`` would displace live
    ``grants``. Asked of a new request and again when a review approves a pending one."""
    found: list[Finding] = []
    over = caps.deny_new(grants, resources, tenant)
    if over is not None:
        found.append(over)
    found += exclusive.deny_new(grants, resources, tenant)
    return found


def _check_displacements(ctx: RequestContext) -> tuple[Finding, ...]:
    """A request alone over the cap is denied by caps.check_asked; whether it would
    displace anything is not asked then."""
    if len(ctx.asked) > ctx.tenant.caps.max_active_resources:
        return ()
    return tuple(displacements(ctx.held.grants, ctx.event.resources, ctx.tenant))


GATES: tuple[Check, ...] = (
    locks.check_subject_locked,
    locks.check_request_locked,
    baseline.check_rate,
)
"""Asked first, in this order; the first that finds anything is the whole answer."""

OBJECTIONS: tuple[Check, ...] = (
    identity.check_kind_mismatch,
    identity.check_issuer,
    identity.check_kind_changed,
    identity.check_attestation,
    identity.check_owner,
    lifecycle.check_reused,
    catalog.check_mismatch,
    catalog.check_unknown_deny,
    bounds.check_held,
    bounds.check_request_ids,
    bounds.check_seen,
    caps.check_per_request,
    caps.check_asked,
    exclusive.check_spans,
    _check_displacements,  # caps deny_new, then exclusive deny_new
    justification.check_reason,
    justification.check_ticket,
    lifetime.check_max,
    windows.check_deny,
    break_glass.check_allowed,
)
"""Checks that deny, in the order their reasons are reported."""

ESCALATIONS: tuple[Check, ...] = (
    windows.check_escalate,
    review.check_step_up,
    catalog.check_unknown_escalate,
    baseline.check_novel,
)
"""Checks that want a human first, in the order their reasons are reported (step-up before
resource-unknown: "it is high" says more than "no catalog entry names it")."""

SILENT_UNLESS: tuple[tuple[Check, Callable[[TenantPolicy], bool]], ...] = (
    # Either machine kind listed requires both; none listed, nobody is asked.
    (identity.check_attestation, lambda tenant: bool(tenant.identity.require_attestation)),
    (identity.check_owner, lambda tenant: bool(tenant.identity.require_owner)),
    (catalog.check_unknown_deny, lambda tenant: tenant.catalog.unknown == "deny"),
    # It fires only when the per-request cap is the stricter of the two.
    (caps.check_per_request, lambda tenant: (tenant.caps.max_resources_per_request
                                             < tenant.caps.max_active_resources)),
    (exclusive.check_spans, lambda tenant: bool(tenant.exclusive)),
    (_check_displacements, lambda tenant: tenant.caps.strategy == "deny_new" or any(
        group.strategy == "deny_new" for group in tenant.exclusive)),
    (justification.check_reason, lambda tenant: tenant.justification.reason_from != "never"),
    (justification.check_ticket, lambda tenant: tenant.justification.ticket_from != "never"),
    (lifetime.check_max, lambda tenant: tenant.ttl.over_max == "deny"),
    (windows.check_deny, lambda tenant: any(
        window.outside == "deny" for window in tenant.windows)),
    (windows.check_escalate, lambda tenant: any(
        window.outside == "escalate" for window in tenant.windows)),
    (review.check_step_up, lambda tenant: tenant.step_up.from_sensitivity != "never"),
    (catalog.check_unknown_escalate, lambda tenant: tenant.catalog.unknown == "escalate"),
    (baseline.check_novel, lambda tenant: tenant.baseline.novel_workload == "escalate"),
)
"""Checks of :data:`OBJECTIONS` and :data:`ESCALATIONS` that find nothing, whatever the
request and the subject's state, for a tenant without the settings their test asks for
(issue M: the packaged policy's requests skip six of them). Each check stays as written;
this only says when asking it is known to be wasted. Not listed: asked always."""


@per_policy
def checks_for(tenant: TenantPolicy) -> tuple[tuple[Check, ...], tuple[Check, ...]]:
    """The objections and escalations a request of ``tenant`` is asked, in report order:
    :data:`OBJECTIONS` and :data:`ESCALATIONS` less the checks :data:`SILENT_UNLESS` shows
    silent under its settings. Worked out once per loaded tenant policy."""
    silent = {check for check, fires in SILENT_UNLESS if not fires(tenant)}
    return (tuple([check for check in OBJECTIONS if check not in silent]),
            tuple([check for check in ESCALATIONS if check not in silent]))


EXTENSION_OBJECTIONS: tuple[Check, ...] = (
    identity.check_kind_mismatch,
    identity.check_issuer,
    identity.check_kind_changed,
    identity.check_attestation,
    identity.check_owner,
    justification.check_reason,
    justification.check_ticket,
    lifetime.check_max,
    windows.check_deny,
)
"""Issue J: the checks of a new request an extension is asked too, for the time it adds (not
the ones about its resources' identity, held already: catalog, request ids, novelty)."""

EXTENSION_ESCALATIONS: tuple[Check, ...] = (windows.check_escalate, review.check_step_up)
"""Issue J: what makes an extension wait for a human, as it would a new request."""


def gates(ctx: RequestContext) -> tuple[Finding, ...]:
    """The first gate's finding, or ``()`` when the request may be evaluated."""
    for check in GATES:
        found = check(ctx)
        if found:
            return found
    return ()


def _prepared(ctx: RequestContext) -> RequestCreated:
    """Work out once per request what several checks read; returns the request."""
    event, tenant = ctx.event, ctx.tenant
    ctx.rank = rank = top_rank(event.resources)
    ctx.requested, ctx.max_s = lifetime.limits(event, tenant, rank)
    ctx.outside = windows.outside(event, tenant, ctx.held.now) if tenant.windows else ()
    ctx.asked = {resource.id for resource in event.resources}
    return event


def evaluate(ctx: RequestContext) -> list[Finding]:
    """Every finding about a request that passed the gates, in report order.

    Escalations are not asked once something objects (a deny wins regardless, so asking
    would only cost time), nor of break-glass, which never waits for a human; break-glass
    asks its ration instead, and only when nothing else objects.
    """
    event = _prepared(ctx)
    objections, escalations = checks_for(ctx.tenant)
    found: list[Finding] = []
    for check in objections:
        found += check(ctx)
    if found:
        return found
    if event.break_glass:
        found += break_glass.check_ration(ctx)
        return found
    for check in escalations:
        found += check(ctx)
    return found


def evaluate_extension(ctx: RequestContext, grant: Grant, expires_at: datetime,
                       sensitivity: str) -> list[Finding]:
    """Every finding about extending ``grant`` to ``expires_at`` (issue J), in report order:
    the checks of a new request for the added time (``ctx.event`` is that request), the
    extension's own limits, and the ``deny_new`` strategies as the subject's other grants
    stand now; escalations only when nothing objects."""
    event, tenant = _prepared(ctx), ctx.tenant
    found: list[Finding] = []
    for check in EXTENSION_OBJECTIONS:
        found += check(ctx)
    found += extension.check_limit(grant, expires_at, sensitivity, tenant)
    found += displacements([held for held in ctx.held.grants if held is not grant],
                           event.resources, tenant)
    if found:
        return found
    for check in EXTENSION_ESCALATIONS:
        found += check(ctx)
    return found


def combine(findings: Sequence[Finding]) -> Finding | None:
    """The one answer to a request from all its findings: deny > escalate > approve.

    Returns the first finding of the winning outcome, with the reasons of the others of
    that outcome appended in order after "; also: " (and its lock, if it has one), or
    ``None`` when nothing objects: approve.
    """
    if not findings:
        return None
    chosen = [finding for finding in findings if finding.outcome == "deny"] or findings
    first = chosen[0]
    if len(chosen) == 1:
        return first
    return Finding(first.outcome, first.rule,
                   first.reason + "; also: " + "; ".join([f.reason for f in chosen[1:]]),
                   first.lock_s, first.lock_reason)
