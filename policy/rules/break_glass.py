"""Emergency access: granted at once for a short time, rationed, reviewed afterwards."""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule

__all__ = ["BREAK_GLASS", "BREAK_GLASS_LIMIT", "check_ration"]

BREAK_GLASS = Rule("break-glass", "Emergency access is granted at once for a short time and "
                   "reviewed afterwards.")
BREAK_GLASS_LIMIT = Rule("break-glass-limit", "Emergency access is rationed per subject; "
                         "beyond the ration the subject is locked.")


def check_ration(ctx: RequestContext) -> tuple[Finding, ...]:
    """Whether this tenant allows break-glass and the subject has ration left.

    Asked only of a break-glass request nothing else objects to (``policy.rules.evaluate``):
    a request denied anyway neither spends the ration nor locks the subject.
    """
    glass = ctx.tenant.break_glass
    if not glass.enabled:
        return (Finding("deny", BREAK_GLASS, "break-glass is disabled for this tenant"),)
    used = len(ctx.uses)
    if used >= glass.max_per_window:
        return (Finding("deny", BREAK_GLASS_LIMIT,
                        f"{used} break-glass grant(s) within {glass.window_s} s, "
                        f"allowed {glass.max_per_window}",
                        lock_s=glass.lock_s,
                        lock_reason=f"break-glass used beyond its ration: locked for "
                                    f"{glass.lock_s} s"),)
    return ()
