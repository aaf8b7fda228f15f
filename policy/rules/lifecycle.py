"""A request's life: a fresh id, approval when nothing objects, and its ends on request."""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule

__all__ = ["AUTO_APPROVE", "REQUEST_ID_REUSED", "REQUEST_WITHDRAWN", "TASK_COMPLETED",
           "check_reused"]

REQUEST_ID_REUSED = Rule("request-id-reused", "A new request may not reuse the id of a live "
                         "grant or a pending request.")
AUTO_APPROVE = Rule("auto-approve", "A request that no rule objects to is approved for its "
                    "time to live.")
REQUEST_WITHDRAWN = Rule("request-withdrawn", "A grant or pending request ends when the "
                         "subject withdraws it.")
TASK_COMPLETED = Rule("task-completed", "A grant ends when the task it was made for is "
                      "reported done.")


def check_reused(ctx: RequestContext) -> tuple[Finding, ...]:
    request_id = ctx.event.request_id
    if ctx.held.live(request_id) or ctx.held.waiting(request_id):
        return (Finding("deny", REQUEST_ID_REUSED,
                        f"request {request_id} is already live or pending"),)
    return ()
