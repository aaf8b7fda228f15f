"""A request's life: a fresh id, approval when nothing objects, and its ends on request."""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule

__all__ = ["AUTO_APPROVE", "REQUEST_ID_REMEMBERED", "REQUEST_ID_REUSED", "REQUEST_WITHDRAWN",
           "TASK_COMPLETED", "check_reused"]

REQUEST_ID_REUSED = Rule("request-id-reused", "A new request may not reuse the id of a live "
                         "grant or a pending request.")
REQUEST_ID_REMEMBERED = Rule("request-id-remembered", "A new request may not reuse the id "
                             "of an earlier granted or escalated request of its subject "
                             "while that id is remembered (limits.request_retention_s).")
AUTO_APPROVE = Rule("auto-approve", "A request that no rule objects to is approved for its "
                    "time to live.")
REQUEST_WITHDRAWN = Rule("request-withdrawn", "A grant or pending request ends when the "
                         "subject withdraws it.")
TASK_COMPLETED = Rule("task-completed", "A grant ends when the task it was made for is "
                      "reported done.")


def check_reused(ctx: RequestContext) -> tuple[Finding, ...]:
    """The id is live or pending, or (issue H) was used before and is still remembered:
    a request id names one request for the retention, so a review signed for it or a
    session on it can never apply to another request of that id."""
    request_id = ctx.event.request_id
    if ctx.held.live(request_id) or ctx.held.waiting(request_id):
        return (Finding("deny", REQUEST_ID_REUSED,
                        f"request {request_id} is already live or pending"),)
    if ctx.held.remembers(request_id):
        return (Finding("deny", REQUEST_ID_REMEMBERED,
                        f"request id {request_id} was used before by this subject and is "
                        f"remembered for {ctx.tenant.limits.request_retention_s} s; use a "
                        "new request id"),)
    return ()
