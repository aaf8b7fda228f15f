"""Lint a validated policy: settings that can never take effect or contradict each other.

Validation (schemas/policy.py) refuses what cannot be enforced at all; lint reports what is
enforceable but probably not what the author meant. Pure: a policy in, findings out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.policy import SENSITIVITY_RANK, Policy, TenantPolicy

__all__ = ["Finding", "describe", "lint"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result: where, how bad, what and the fix."""

    level: Literal["error", "warning"]
    where: str
    message: str


def _tenant(name: str, tenant: TenantPolicy) -> list[Finding]:
    found: list[Finding] = []

    def warn(where: str, message: str) -> None:
        found.append(Finding("warning", f"{name}.{where}", message))

    if not tenant.identity.allowed_issuers:
        warn("identity.allowed_issuers", "no issuers listed: identities from any issuer are "
             "accepted; list the issuers you trust per kind")
    reviewers = tenant.step_up.reviewers
    if not reviewers:
        escalating = []
        if tenant.step_up.from_sensitivity != "never":
            escalating.append(f"step-up from {tenant.step_up.from_sensitivity}")
        if tenant.baseline.novel_workload == "escalate":
            escalating.append("baseline-novel")
        escalating += [f"windows[{n}]" for n, w in enumerate(tenant.windows)
                       if w.outside == "escalate"]
        if escalating:
            warn("step_up.reviewers", f"{', '.join(escalating)} escalate but no reviewer may "
                 f"approve: those requests are denied after {tenant.step_up.pending_ttl_s} s; "
                 "add [[...step_up.reviewers]]")
    caps = tenant.caps
    if caps.max_resources_per_request > caps.max_active_resources \
            and caps.strategy == "revoke_oldest":
        warn("caps.max_resources_per_request",
             f"{caps.max_resources_per_request} is above max_active_resources "
             f"({caps.max_active_resources}): rule caps-per-request can never fire")
    for number, limit in enumerate(tenant.ttl.limits):
        if limit.max_s >= tenant.ttl.max_s and limit.default_s >= tenant.ttl.default_s:
            warn(f"ttl.limits[{number}]", "not stricter than ttl.default_s/max_s: it can "
                 "never change a lifetime")
    if tenant.break_glass.enabled and tenant.break_glass.ttl_s > tenant.ttl.max_s:
        warn("break_glass.ttl_s", f"{tenant.break_glass.ttl_s} s is above ttl.max_s "
             f"({tenant.ttl.max_s} s): break-glass grants are clamped to it")
    for number, window in enumerate(tenant.windows):
        if not window.days:
            warn(f"windows[{number}].days", "no days: every covered request falls outside")
    seen: dict[str, str] = {}
    for group in tenant.exclusive:
        for side in (*group.envs, *(f"role {role}" for role in group.roles)):
            if side in seen and seen[side] != group.name:
                warn(f"exclusive.{group.name}", f"{side} is also a side of {seen[side]}; "
                     "check the two groups do not contradict each other")
            seen[side] = group.name
    rank = SENSITIVITY_RANK
    justify = tenant.justification
    if "never" not in (justify.reason_from, justify.ticket_from) and \
            rank[justify.ticket_from] < rank[justify.reason_from]:
        warn("justification.ticket_from", "a ticket is required below the level that needs "
             "a reason; usually ticket_from is at or above reason_from")
    return found


def lint(policy: Policy) -> list[Finding]:
    """Every finding for the defaults and each tenant section."""
    found = _tenant("defaults", policy.defaults)
    for name, tenant in sorted(policy.tenants.items()):
        found += _tenant(f"tenants.{name}", tenant)
    if policy.unknown_tenants == "deny" and not policy.tenants:
        found.insert(0, Finding("error", "unknown_tenants", "\"deny\" with no [tenants.*] "
                                "section refuses every event; name a tenant or use "
                                "\"defaults\""))
    return found


def describe(policy: Policy) -> list[str]:
    """A readable summary, one line per tenant section."""
    lines = []
    sections = [("defaults", policy.defaults),
                *((f"tenant {name}", tenant) for name, tenant in sorted(policy.tenants.items()))]
    for label, tenant in sections:
        groups = "; ".join(f"{g.name} ({'/'.join((*g.envs, *g.roles))}, {g.strategy})"
                           for g in tenant.exclusive) or "none"
        windows = len(tenant.windows)
        lines.append(
            f"{label}: cap {tenant.caps.max_active_resources} resources "
            f"({tenant.caps.strategy}), ttl {tenant.ttl.default_s}/{tenant.ttl.max_s} s "
            f"({tenant.ttl.over_max}), exclusive {groups}, step-up from "
            f"{tenant.step_up.from_sensitivity} with {len(tenant.step_up.reviewers)} reviewer "
            f"set(s), {windows} time window(s), break-glass "
            f"{'on' if tenant.break_glass.enabled else 'off'}, baseline "
            f"{tenant.baseline.max_requests}/{tenant.baseline.window_s} s"
        )
    if policy.unknown_tenants == "deny":
        lines.append("other tenants: denied")
    else:
        lines.append("other tenants: defaults")
    return lines
