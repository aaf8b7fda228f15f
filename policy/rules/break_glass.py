"""Emergency access: granted at once for a short time, rationed, reviewed afterwards."""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule

__all__ = [
    "BREAK_GLASS",
    "BREAK_GLASS_LIMIT",
    "BREAK_GLASS_NOT_ALLOWED",
    "POST_REVIEW_DONE",
    "POST_REVIEW_OVERDUE",
    "POST_REVIEW_PENDING",
    "check_allowed",
    "check_ration",
]

BREAK_GLASS = Rule("break-glass", "Emergency access is granted at once for a short time and "
                   "reviewed afterwards.")
BREAK_GLASS_LIMIT = Rule("break-glass-limit", "Emergency access is rationed per subject; "
                         "beyond the ration the subject is locked.")
BREAK_GLASS_NOT_ALLOWED = Rule("break-glass-not-allowed", "Only the subject kinds the policy "
                               "lists (break_glass.kinds) may break glass.")
POST_REVIEW_DONE = Rule("post-review-done", "A break-glass grant's post-review is closed by "
                        "a signed review of an allowed reviewer who is not the subject; a "
                        "rejection has the policy's consequence.")
POST_REVIEW_OVERDUE = Rule("post-review-overdue", "A break-glass post-review not done within "
                           "break_glass.review_within_s escalates.")
POST_REVIEW_PENDING = Rule("post-review-pending", "A subject with an overdue break-glass "
                           "post-review may not break glass again.")


def check_allowed(ctx: RequestContext) -> tuple[Finding, ...]:
    """Whether the subject's kind may break glass, and has no post-review overdue (issue
    J). Asked of break-glass requests only."""
    if not ctx.event.break_glass:
        return ()
    found: tuple[Finding, ...] = ()
    glass, kind = ctx.tenant.break_glass, ctx.event.subject.kind
    if kind not in glass.kinds:
        found = (Finding("deny", BREAK_GLASS_NOT_ALLOWED, f"kind {kind} may not break glass "
                         f"(break_glass.kinds: {', '.join(glass.kinds) or 'none'})"),)
    overdue = [item.request_id for item in ctx.held.obligations if item.deadline is None]
    if overdue:
        found += (Finding("deny", POST_REVIEW_PENDING, f"the post-review of break-glass "
                          f"{', '.join(overdue)} is overdue; no break-glass until it is done"),)
    return found


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
