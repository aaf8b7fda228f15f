"""How long a grant lives: the lifetime a request gets, its maximum, and its end."""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule, per_policy, top_rank
from schemas.events import RequestCreated
from schemas.policy import SENSITIVITY_RANK, TenantPolicy
from schemas.policy_lifecycle import TtlPolicy

__all__ = ["TTL_EXPIRED", "TTL_MAX", "check_max", "limits"]

TTL_MAX = Rule("ttl-max", "A grant may not be asked for longer than the policy's maximum.")
TTL_EXPIRED = Rule("ttl-expired", "A grant ends when its time to live runs out.")


_Limit = tuple[str | None, int, int, int]
"""A ``ttl.limits`` entry as :func:`limits` asks it: env (None: any), the rank its
sensitivity_from names (0: any), default_s, max_s."""


@per_policy
def _prepared(ttl: TtlPolicy) -> tuple[tuple[_Limit, ...], tuple[int, ...]]:
    """The section's limits with their sensitivities ranked, and ``total_s`` by rank."""
    ranked = tuple(sorted(SENSITIVITY_RANK, key=SENSITIVITY_RANK.__getitem__))
    return (tuple([(limit.env, 0 if limit.sensitivity_from is None
                    else SENSITIVITY_RANK[limit.sensitivity_from], limit.default_s,
                    limit.max_s) for limit in ttl.limits]),
            tuple([ttl.total_s(sensitivity) for sensitivity in ranked]))


def limits(event: RequestCreated, tenant: TenantPolicy, rank: int | None = None
           ) -> tuple[int, int]:
    """(requested or default lifetime, maximum): the strictest limit matching any resource.
    ``rank`` is the resources' top rank (:func:`top_rank`) when the caller has it."""
    ttl = tenant.ttl
    default_s, max_s = ttl.default_s, ttl.max_s
    ranked_limits, totals = _prepared(ttl)
    for env, floor, limit_default_s, limit_max_s in ranked_limits:
        for resource in event.resources:
            if (env is None or env == resource.env) and (
                    SENSITIVITY_RANK[resource.sensitivity] >= floor):
                # One matching resource applies the limit; more would apply it again.
                default_s, max_s = min(default_s, limit_default_s), min(max_s, limit_max_s)
                break
    # Issue J: no grant's whole life passes ttl.max_total_s, its first lifetime included.
    max_s = min(max_s, totals[top_rank(event.resources) if rank is None else rank])
    return (event.ttl_s if event.ttl_s is not None else default_s), max_s


def check_max(ctx: RequestContext) -> tuple[Finding, ...]:
    """Over the maximum is denied only in ``deny`` mode; otherwise the grant is clamped."""
    if ctx.requested > ctx.max_s and ctx.tenant.ttl.over_max == "deny":
        return (Finding("deny", TTL_MAX,
                        f"ttl_s {ctx.requested} exceeds the maximum {ctx.max_s}"),)
    return ()
