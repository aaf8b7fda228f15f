"""``request.created``: ask the rules (policy.rules), combine them, and act on the answer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from policy.ledger import Ledger, resource_ids
from policy.notices import next_notice_at
from policy.reviews import request_digest
from policy.rules import RequestContext, Rule, combine, evaluate, gates
from policy.rules.base import top_sensitivity
from policy.rules.break_glass import BREAK_GLASS
from policy.rules.caps import MAX_ACTIVE_RESOURCES
from policy.rules.catalog import resolve
from policy.rules.exclusive import EXCLUSIVE_ENVIRONMENTS, sides
from policy.rules.identity import binds, is_machine
from policy.rules.lifecycle import AUTO_APPROVE
from schemas._base import format_time, trusted_model
from schemas.events import RequestCreated, Resource
from schemas.policy import TenantPolicy
from schemas.state import Grant, Obligation, Pending

__all__ = ["approvals_needed", "approve", "clamped", "next_notice", "now_seen",
           "on_request_created", "rate_window", "with_resources"]


def _within(times: Iterable[datetime], now: datetime, seconds: int) -> tuple[datetime, ...]:
    start = now - timedelta(seconds=seconds)
    return tuple([moment for moment in times if moment > start])


def rate_window(ledger: Ledger, tenant: TenantPolicy) -> tuple[datetime, ...]:
    """The subject's requests within the baseline window, the one being decided (at
    ``ledger.now``) last: what the rate baseline counts."""
    now = ledger.now
    start = now - timedelta(seconds=tenant.baseline.window_s)
    within = [moment for moment in ledger.state.recent_requests if moment > start]
    within.append(now)  # one list and one tuple, as _within's filter would keep them
    return tuple(within)


def on_request_created(ledger: Ledger, event: RequestCreated,
                       tenant: TenantPolicy) -> dict[str, object]:
    """Decide a new request; returns the state fields it changed beyond the ledger's.

    The rules read the effective resources (policy.rules.catalog.resolve: the catalog's
    env, roles and sensitivity, repeated ids merged, labels normalised), and so do the
    grant or pending request made; a review's signature still binds the request as sent.
    """
    sent = event
    resolved = resolve(event.resources, tenant.catalog)
    if resolved.resources is not event.resources:
        event = with_resources(event, resolved.resources)
    now, request_id = ledger.now, event.request_id
    state = ledger.state
    recent = rate_window(ledger, tenant)
    extra: dict[str, object] = {"recent_requests": recent[-(tenant.baseline.max_requests + 1):]}
    # Returning `extra` early below still records this request for the rate baseline.
    glass = tenant.break_glass
    # Only break-glass requests read the ration: the rest skip filtering its window.
    uses = _within(state.break_glass_uses, now, glass.window_s) if event.break_glass else ()
    ctx = RequestContext(ledger, event, tenant, recent, uses)
    ctx.mismatches, ctx.unknown = resolved.mismatches, resolved.unknown

    gated = gates(ctx)
    findings = gated or evaluate(ctx)
    if not gated and not state.kind_fixed and binds(findings):
        extra["kind_fixed"] = True  # the first request whose identity claims held
    verdict = combine(findings)
    if verdict is not None and verdict.outcome == "deny":
        ledger.deny(request_id, resource_ids(event.resources), verdict.rule, verdict.reason)
        if verdict.lock_s:
            ledger.lock_subject(now + timedelta(seconds=verdict.lock_s), verdict.rule,
                                verdict.lock_reason, request_id)
        return extra

    # Granted or escalated: the id now names this request for the retention (issue H), so
    # no review or session meant for it can ever apply to another request of that id.
    retention = tenant.limits.request_retention_s
    if retention:
        ledger.remember_request(request_id, now + timedelta(seconds=retention))
    requested, max_s = ctx.requested, ctx.max_s
    if event.break_glass:  # nothing objects, and break-glass never escalates
        ttl = min(requested, max_s, glass.ttl_s)
        extra["break_glass_uses"] = (*uses, now)
        granted = approve(ledger, request_id, event.resources, now, ttl, tenant, BREAK_GLASS,
                          f"break-glass: granted for {ttl} s, marked for post-review",
                          post_review=True)
        # Issue J: the post-review is an obligation, kept after the grant ends.
        due = granted.granted_at + timedelta(seconds=glass.review_within_s)
        ledger.oblige(Obligation(request_id, event.resources, granted.granted_at, due,
                                 request_digest(sent), due))
        ledger.notice("post-review-due", now, request_id, resource_ids(event.resources), due,
                      f"break-glass {request_id} was granted; its post-review by an allowed "
                      f"reviewer other than the subject is due by {format_time(due)}")
        return extra

    ttl = min(requested, max_s)
    if verdict is not None:  # escalate
        pending_until = now + timedelta(seconds=tenant.step_up.pending_ttl_s)
        ledger.pending.append(Pending(request_id, event.resources, now, pending_until, ttl,
                                      requested, request_digest(sent),
                                      needed=approvals_needed(event.resources, tenant)))
        ledger.emit("escalate", verdict.rule, f"{verdict.reason}; waiting for review until "
                    f"{format_time(pending_until)}", request_id=request_id,
                    resources=resource_ids(event.resources), expires_at=pending_until)
        return extra

    approve(ledger, request_id, event.resources, now, ttl, tenant, AUTO_APPROVE,
            f"no rule objects; granted for {ttl} s{clamped(ttl, requested)}")
    extra.update(now_seen(ledger, event.resources))
    return extra


def with_resources(event: RequestCreated, resources: tuple[Resource, ...]) -> RequestCreated:
    """``event.model_copy(update={"resources": resources})``, without pydantic's generic
    copy (issue M: a third of a request's time under a catalog that changes claims).
    Events keep no extra fields or private attributes, so the fields are all it copies."""
    fields = event.__dict__.copy()
    fields["resources"] = resources
    return trusted_model(RequestCreated, fields, event.__pydantic_fields_set__ | {"resources"})


def approvals_needed(resources: tuple[Resource, ...], tenant: TenantPolicy) -> int:
    """How many distinct reviewers must approve a request for ``resources`` (issue J,
    ``step_up.approvals`` by their highest sensitivity)."""
    return tenant.step_up.needed(top_sensitivity(resources))


def now_seen(ledger: Ledger, resources: tuple[Resource, ...]) -> dict[str, object]:
    """A workload's or agent's approved env/sensitivity pairs, so they no longer count as
    novel."""
    if not is_machine(ledger.kind):
        return {}
    pairs = set(ledger.state.seen) | {f"{r.env}/{r.sensitivity}" for r in resources}
    return {"seen": tuple(sorted(pairs))}


def clamped(ttl: int, requested: int | None) -> str:
    """The note an approval's reason carries when the lifetime asked for was cut."""
    if requested is None or ttl >= requested:
        return ""
    return f" (requested {requested} s, clamped to the maximum)"


def approve(ledger: Ledger, request_id: str, resources: tuple[Resource, ...],
            now: datetime, ttl: int, tenant: TenantPolicy, rule: Rule, reason: str,
            *, post_review: bool = False) -> Grant:
    """Grant, then end what the new grant displaces: conflicting and oldest grants.

    (The ``deny_new`` strategies refuse such a grant before it gets here:
    ``policy.rules.displacements``.)
    """
    # A grant runs from the request's own (broker) time, not the later time a record
    # forwarded from another partition or fetched late may be decided at: a session the
    # gateway opened after the request reached the broker is covered (a grant made after a
    # session never covers it), and the lifetime counts from when access was asked for.
    # It never ends before it was decided (decisions of a subject never go back in time).
    since = min(ledger.event_time, now)
    expires_at = max(since + timedelta(seconds=ttl), now)
    new = Grant(request_id, resources, since, expires_at, post_review,
                notice_at=next_notice(expires_at, tenant, now))
    ledger.grant(new, rule, reason)
    for group in tenant.exclusive:
        taken = sides(new.resources, group.envs, group.roles)
        if not taken:
            continue
        for older in [grant for grant in ledger.grants if grant is not new]:
            excluded = sides(older.resources, group.envs, group.roles) - taken
            if excluded:
                ledger.revoke(older, EXCLUSIVE_ENVIRONMENTS,
                              f"new grant {request_id} in {', '.join(sorted(taken))} "
                              f"excludes {', '.join(sorted(excluded))}: older grant "
                              f"{older.request_id} revoked")
    limit = tenant.caps.max_active_resources
    # The distinct resources held are the ledger's summary, already worked out for the
    # verdict just emitted.
    while (held := ledger.summary().active_resources) > limit:
        # The oldest grant ends first (ties in time keep arrival order), even one whose
        # resources are also held through a newer grant: oldest-first stays predictable.
        oldest = min((g for g in ledger.grants if g is not new), key=lambda g: g.granted_at)
        ledger.revoke(oldest, MAX_ACTIVE_RESOURCES,
                      f"subject holds {held} resources, limit is {limit}: oldest grant "
                      f"{oldest.request_id} revoked")
    return new


def next_notice(expires_at: datetime, tenant: TenantPolicy, after: datetime) -> datetime | None:
    """When the next expiry notice of a grant expiring at ``expires_at`` is due: the
    earliest ``notices.before_expiry_s`` moment after ``after`` (issue J), if any."""
    return next_notice_at(expires_at, tenant.notices.before_expiry_s, after)
