"""How long a grant lives: the lifetime a request gets, its maximum, and its end."""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule, top_sensitivity
from schemas.events import RequestCreated
from schemas.policy import SENSITIVITY_RANK, TenantPolicy

__all__ = ["TTL_EXPIRED", "TTL_MAX", "check_max", "limits"]

TTL_MAX = Rule("ttl-max", "A grant may not be asked for longer than the policy's maximum.")
TTL_EXPIRED = Rule("ttl-expired", "A grant ends when its time to live runs out.")


def limits(event: RequestCreated, tenant: TenantPolicy) -> tuple[int, int]:
    """(requested or default lifetime, maximum): the strictest limit matching any resource."""
    default_s, max_s = tenant.ttl.default_s, tenant.ttl.max_s
    for limit in tenant.ttl.limits:
        for resource in event.resources:
            if (limit.env is None or limit.env == resource.env) and (
                limit.sensitivity_from is None
                or SENSITIVITY_RANK[resource.sensitivity]
                >= SENSITIVITY_RANK[limit.sensitivity_from]
            ):
                default_s, max_s = min(default_s, limit.default_s), min(max_s, limit.max_s)
    # Issue J: no grant's whole life passes ttl.max_total_s, its first lifetime included.
    max_s = min(max_s, tenant.ttl.total_s(top_sensitivity(event.resources)))
    return (event.ttl_s if event.ttl_s is not None else default_s), max_s


def check_max(ctx: RequestContext) -> tuple[Finding, ...]:
    """Over the maximum is denied only in ``deny`` mode; otherwise the grant is clamped."""
    if ctx.requested > ctx.max_s and ctx.tenant.ttl.over_max == "deny":
        return (Finding("deny", TTL_MAX,
                        f"ttl_s {ctx.requested} exceeds the maximum {ctx.max_s}"),)
    return ()
