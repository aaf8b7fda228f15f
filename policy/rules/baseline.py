"""What is usual for a subject: how often it asks, and (for workloads and agents) what it asks
for."""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule
from policy.rules.identity import is_machine

__all__ = ["BASELINE_NOVEL", "BASELINE_RATE", "check_novel", "check_rate"]

BASELINE_RATE = Rule("baseline-rate", "A subject asking more often than its baseline allows is "
                     "locked.")
BASELINE_NOVEL = Rule("baseline-novel", "A workload's or agent's first request for an "
                      "environment and sensitivity never granted to it needs a human.")


def check_rate(ctx: RequestContext) -> tuple[Finding, ...]:
    """A gate: a subject over its rate is denied and locked before any other check."""
    baseline = ctx.tenant.baseline
    count = len(ctx.recent)
    if count > baseline.max_requests:
        return (Finding("deny", BASELINE_RATE,
                        f"{count} requests within {baseline.window_s} s, baseline "
                        f"allows {baseline.max_requests}",
                        lock_s=baseline.lock_s,
                        lock_reason=f"request rate above baseline: locked for "
                                    f"{baseline.lock_s} s"),)
    return ()


def check_novel(ctx: RequestContext) -> tuple[Finding, ...]:
    """A workload's or agent's env/sensitivity pairs never approved before
    (``SubjectState.seen``); ``baseline.novel_workload`` covers both machine kinds."""
    if not is_machine(ctx.event.subject.kind) or ctx.tenant.baseline.novel_workload != "escalate":
        return ()
    novel = sorted({f"{r.env}/{r.sensitivity}" for r in ctx.event.resources}
                   - set(ctx.held.state.seen))
    if novel:
        return (Finding("escalate", BASELINE_NOVEL, f"first request for {', '.join(novel)}"),)
    return ()
