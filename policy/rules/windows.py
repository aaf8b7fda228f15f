"""When access may be asked: time windows per environment and sensitivity, in their zone."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from policy.rules.base import Finding, RequestContext, Rule
from schemas.events import RequestCreated
from schemas.policy import SENSITIVITY_RANK, WEEKDAYS, TenantPolicy

__all__ = ["TIME_WINDOW", "check_deny", "check_escalate", "outside"]

TIME_WINDOW = Rule("time-window", "Access to covered resources outside their time window "
                   "needs a human or is denied.")


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def outside(event: RequestCreated, tenant: TenantPolicy, now: datetime) -> tuple[Finding, ...]:
    """One finding (the window's ``outside`` outcome) per window the request, decided at
    trusted time ``now`` (never its claimed ``at``), falls outside of. Worked out once per
    request: a window denies or escalates, two checks read it."""
    if not tenant.windows:
        return ()
    found: list[Finding] = []
    for window in tenant.windows:
        covered = [r for r in event.resources
                   if (not window.envs or r.env in window.envs)
                   and SENSITIVITY_RANK[r.sensitivity] >= SENSITIVITY_RANK[window.sensitivity_from]]
        if not covered:
            continue
        local = now.astimezone(_zone(window.timezone))
        if WEEKDAYS[local.weekday()] in window.days and window.start <= local.time() < window.end:
            continue
        found.append(Finding(window.outside, TIME_WINDOW,
                             f"{', '.join([r.id for r in covered])} outside "
                             f"{'/'.join(window.days)} "
                             f"{window.start:%H:%M}-{window.end:%H:%M} {window.timezone} "
                             f"(request at {local:%a %H:%M})"))
    return tuple(found)


def check_deny(ctx: RequestContext) -> tuple[Finding, ...]:
    """Deny windows; break-glass passes them only where ``break_glass.ignore_windows``
    (issue J: before it, always)."""
    if not ctx.outside or (ctx.event.break_glass and ctx.tenant.break_glass.ignore_windows):
        return ()
    return tuple([finding for finding in ctx.outside if finding.outcome == "deny"])


def check_escalate(ctx: RequestContext) -> tuple[Finding, ...]:
    if not ctx.outside:
        return ()
    return tuple([finding for finding in ctx.outside if finding.outcome == "escalate"])
