"""How much one subject may make the watcher remember (issue H, finding 5).

A stored value must stay small: it goes to the changelog as one Kafka message. These
checks deny a request that would pass a limit of ``limits``; the tenants a subject holds
state in are bounded in :func:`policy.decide.decide`, which is told how many others it has.
"""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule
from policy.rules.identity import is_machine
from schemas._base import format_time
from schemas.policy import TenantPolicy

__all__ = ["STATE_LIMIT", "check_held", "check_request_ids", "check_seen", "tenants_reason"]

STATE_LIMIT = Rule("state-limit", "A subject's remembered state stays within the policy's "
                   "limits (grants, pending requests, remembered pairs, tenants).")


def check_held(ctx: RequestContext) -> tuple[Finding, ...]:
    """One more grant or pending request would pass ``limits.max_grants``."""
    held = len(ctx.held.grants) + len(ctx.held.pending)
    limit = ctx.tenant.limits.max_grants
    if held + 1 > limit:
        return (Finding("deny", STATE_LIMIT, f"subject holds {held} grants and pending "
                        f"requests, limit is {limit} (limits.max_grants)"),)
    return ()


def check_request_ids(ctx: RequestContext) -> tuple[Finding, ...]:
    """One more remembered request id would pass ``limits.max_request_ids`` (ids are
    forgotten when their retention ends, never before: policy.ledger)."""
    held = len(ctx.held.requested)
    limit = ctx.tenant.limits.max_request_ids
    if held + 1 > limit:
        return (Finding("deny", STATE_LIMIT, f"subject remembers {held} request ids, limit "
                        f"is {limit} (limits.max_request_ids); the earliest is forgotten at "
                        f"{format_time(ctx.held.requested[0].until)}"),)
    return ()


def check_seen(ctx: RequestContext) -> tuple[Finding, ...]:
    """A workload's or agent's remembered env/sensitivity pairs would pass
    ``limits.max_seen``."""
    if not is_machine(ctx.event.subject.kind):
        return ()
    seen = set(ctx.held.state.seen)
    seen.update(f"{r.env}/{r.sensitivity}" for r in ctx.event.resources)
    limit = ctx.tenant.limits.max_seen
    if len(seen) > limit:
        return (Finding("deny", STATE_LIMIT, f"subject would be remembered with {len(seen)} "
                        f"env/sensitivity pairs, limit is {limit} (limits.max_seen)"),)
    return ()


def tenants_reason(others: int, tenant: TenantPolicy) -> str | None:
    """Why an event may not start state in one more tenant (None: it may)."""
    limit = tenant.limits.max_tenants
    if others < limit:
        return None
    return f"subject holds state in {others} tenants, limit is {limit} (limits.max_tenants)"
