"""Lint a validated policy: settings that can never take effect, contradict each other or
leave a guard rail off.

Validation (schemas/policy.py) refuses what cannot be enforced at all; lint reports what is
enforceable but probably not what the author meant, and (issue H) what is enforceable but
too loose for a security control: grants over :data:`MAX_GRANT_S`, step-up or machine
attestation off, a break-glass ration looser than :data:`BREAK_GLASS_MAX_PER_WINDOW` per
window and :data:`BREAK_GLASS_MAX_PER_DAY` a day, reviewers without keys, unknown tenants
served the defaults, an empty catalog that lets requesters' claims decide, and timings that
switch a guard off in effect (:data:`LOOSE_TIMINGS`: a skew of hours, locks of seconds, a
rate baseline no one reaches, reviews that wait for weeks, a long session grace).
``policy check --strict`` fails on any finding. Pure: a policy in, findings out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.policy import SENSITIVITY_RANK, Policy, TenantPolicy

__all__ = ["BREAK_GLASS_MAX_PER_DAY", "BREAK_GLASS_MAX_PER_WINDOW", "LOOSE_TIMINGS",
           "MAX_BASELINE_PER_HOUR", "MAX_GRANT_S", "Finding", "describe", "lint"]

MAX_GRANT_S = 24 * 3600
"""Longest grant lint accepts without a warning (ttl.max_s, ttl.limits[].max_s,
break_glass.ttl_s)."""
BREAK_GLASS_MAX_PER_WINDOW = 3
BREAK_GLASS_MAX_PER_DAY = 3
"""A tight break-glass ration: at most 3 uses per window and at most 3 a day on average
(max_per_window * 86400 / window_s), so a window shorter than 8 h per use is too loose."""
MAX_BASELINE_PER_HOUR = 600
"""A rate baseline allowing more requests an hour than this (one every 6 s) locks no one."""
LOOSE_TIMINGS: tuple[tuple[str, str, int, str], ...] = (
    # (setting, "above"/"below", bound in seconds, what the bound protects)
    ("time.max_skew_s", "above", 900, "a producer's clock may then be that far off, and a "
     "signed review or release stays replayable that long"),
    ("locks.default_s", "below", 300, "a session-rule lock that short stops nothing"),
    ("locks.request_s", "below", 300, "a request lock that short stops nothing"),
    ("break_glass.lock_s", "below", 300, "an over-ration lock that short stops nothing"),
    ("baseline.lock_s", "below", 300, "a rate lock that short stops nothing"),
    ("step_up.pending_ttl_s", "above", 7 * 86400, "an escalated request stays approvable "
     "by a review that long"),
    ("sessions.grace_s", "above", 300, "a session on a grant not seen yet goes unchecked "
     "that long"),
)
"""Timing settings lint warns on past a bound: each value switches its guard off in effect."""


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

    found += _guard_rails(name, tenant)
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


def _guard_rails(name: str, tenant: TenantPolicy) -> list[Finding]:
    """Settings a security control should not ship with (issue H); each names the fix."""
    found: list[Finding] = []

    def warn(where: str, message: str) -> None:
        found.append(Finding("warning", f"{name}.{where}", message))

    day = f"{MAX_GRANT_S // 3600} h"
    grants = [("ttl.max_s", tenant.ttl.max_s),
              *((f"ttl.limits[{n}].max_s", limit.max_s) for n, limit in
                enumerate(tenant.ttl.limits))]
    if tenant.break_glass.enabled:
        grants.append(("break_glass.ttl_s", tenant.break_glass.ttl_s))
    for where, seconds in grants:
        if seconds > MAX_GRANT_S:
            warn(where, f"{seconds} s allows grants longer than {day}; set it to "
                 f"{MAX_GRANT_S} or less (just-in-time access is short)")
    if tenant.step_up.from_sensitivity == "never":
        warn("step_up.from_sensitivity", "\"never\": step-up is off and no request needs a "
             "human; set it to \"high\" (or the level from which a human must approve)")
    if not set(tenant.identity.require_attestation) & {"workload", "agent"}:
        warn("identity.require_attestation", "neither workload nor agent: machine identities "
             "are approved unattested; list [\"workload\", \"agent\"] (either one requires "
             "both)")
    glass = tenant.break_glass
    if glass.enabled and (glass.max_per_window > BREAK_GLASS_MAX_PER_WINDOW
                          or glass.max_per_window * 86400
                          > BREAK_GLASS_MAX_PER_DAY * glass.window_s):
        warn("break_glass.max_per_window", f"{glass.max_per_window} per {glass.window_s} s is "
             f"not a tight ration; allow at most {BREAK_GLASS_MAX_PER_WINDOW} per window and "
             f"{BREAK_GLASS_MAX_PER_DAY} a day (window_s >= 28800 * max_per_window, e.g. 1 "
             "per 86400 s), or set enabled = false")
    catalog = tenant.catalog
    if not catalog.resources and catalog.unknown == "claim":
        warn("catalog", "no resources listed and unknown = \"claim\": requesters' claims "
             "decide every resource's sensitivity, env and roles; list your resources under "
             "[[...catalog.resources]] and set unknown = \"escalate\" (unknown_from = "
             "\"medium\") or \"deny\"")
    found += _timings(name, tenant)
    baseline = tenant.baseline
    if baseline.max_requests * 3600 > MAX_BASELINE_PER_HOUR * baseline.window_s:
        warn("baseline.max_requests", f"{baseline.max_requests} per {baseline.window_s} s "
             f"is more than {MAX_BASELINE_PER_HOUR} an hour: the rate baseline locks no one; "
             "allow fewer per window (the packaged policy: 30 per 3600 s)")
    keyed = {key.reviewer for key in tenant.step_up.reviewer_keys}
    keyless = sorted({reviewer for group in tenant.step_up.reviewers
                      for reviewer in group.ids} - keyed)
    if keyless:
        warn("step_up.reviewer_keys", f"no key for reviewer(s) {', '.join(keyless)}: their "
             "approvals can never verify (review-signature); add a [[...step_up.reviewer_keys]] "
             "entry each (`jitwatch keygen`), or remove them from step_up.reviewers")
    return found


def _timings(name: str, tenant: TenantPolicy) -> list[Finding]:
    found = []
    for setting, side, bound, why in LOOSE_TIMINGS:
        section, field = setting.split(".")
        value = getattr(getattr(tenant, section), field)
        if value is None or (side == "above" and value <= bound) or \
                (side == "below" and value >= bound):
            continue
        if setting.startswith("break_glass") and not tenant.break_glass.enabled:
            continue
        fix = f"{bound} s or {'less' if side == 'above' else 'more'}"
        found.append(Finding("warning", f"{name}.{setting}",
                             f"{value} s is {side} {bound} s: {why}; set it to {fix}"))
    return found


def lint(policy: Policy) -> list[Finding]:
    """Every finding for the defaults and each tenant section (a tenant section equal to
    ``[defaults]`` is reported once, under defaults)."""
    found = _tenant("defaults", policy.defaults)
    for name, tenant in sorted(policy.tenants.items()):
        if tenant != policy.defaults:
            found += _tenant(f"tenants.{name}", tenant)
    if policy.unknown_tenants == "defaults":
        found.insert(0, Finding("warning", "unknown_tenants", "\"defaults\": unknown tenants "
                                "get [defaults], so any tenant name a producer sends is served; "
                                "set unknown_tenants = \"deny\" and name each tenant under "
                                "[tenants.NAME]"))
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
