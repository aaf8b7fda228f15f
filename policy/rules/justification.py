"""Why access is asked: a stated reason, and a ticket, from the policy's sensitivity up."""

from __future__ import annotations

import re
from functools import cache

from policy.rules.base import Finding, RequestContext, Rule, reaches

__all__ = ["JUSTIFICATION_REASON", "JUSTIFICATION_TICKET", "check_reason", "check_ticket"]

JUSTIFICATION_REASON = Rule("justification-reason", "Sensitive access needs a stated reason.")
JUSTIFICATION_TICKET = Rule("justification-ticket", "More sensitive access needs a ticket of "
                            "the agreed form.")


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def check_reason(ctx: RequestContext) -> tuple[Finding, ...]:
    justify = ctx.tenant.justification
    if reaches(ctx.rank, justify.reason_from) and not (ctx.event.reason or "").strip():
        return (Finding("deny", JUSTIFICATION_REASON,
                        f"a reason is required from sensitivity {justify.reason_from}"),)
    return ()


def check_ticket(ctx: RequestContext) -> tuple[Finding, ...]:
    justify = ctx.tenant.justification
    ticket = ctx.event.ticket
    if reaches(ctx.rank, justify.ticket_from) and not _pattern(
            justify.ticket_pattern).fullmatch(ticket or ""):
        return (Finding("deny", JUSTIFICATION_TICKET, f"a ticket matching "
                        f"{justify.ticket_pattern} is required from sensitivity "
                        f"{justify.ticket_from} (got {ticket!r})"),)
    return ()
