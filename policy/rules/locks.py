"""Locks: a locked subject or request is refused until the lock ends or is released.

Locks are set by other rules (baseline-rate, break-glass-limit, the review and session
rules); these rules refuse what a lock covers and record how it ends. Who may end one early
is policy.releases' question, decided by ``policy.handlers.lifecycle``.
"""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule
from schemas._base import format_time

__all__ = ["LOCK_EXPIRED", "LOCK_RELEASED", "RELEASE_NOT_AUTHORIZED", "REQUEST_LOCKED",
           "SUBJECT_LOCKED", "check_request_locked", "check_subject_locked"]

SUBJECT_LOCKED = Rule("subject-locked", "A locked subject's requests are denied until the lock "
                      "ends.")
REQUEST_LOCKED = Rule("request-locked", "A locked request is denied until the lock ends.")
LOCK_RELEASED = Rule("lock-released", "An operator may release a lock before it ends.")
RELEASE_NOT_AUTHORIZED = Rule("release-not-authorized", "A lock is released early only by an "
                              "operator the policy lists, with a valid signature, and never "
                              "by the subject it locks.")
LOCK_EXPIRED = Rule("lock-expired", "A lock ends when its duration runs out.")


def check_subject_locked(ctx: RequestContext) -> tuple[Finding, ...]:
    """A gate: nothing else is asked of a locked subject's request."""
    until = ctx.held.locked_until
    if until is not None:
        return (Finding("deny", SUBJECT_LOCKED,
                        f"subject is locked until {format_time(until)}"),)
    return ()


def check_request_locked(ctx: RequestContext) -> tuple[Finding, ...]:
    """A gate: a locked request id is refused, whatever it asks."""
    held = ctx.held
    lock = held.request_lock(ctx.event.request_id) if held.request_locks else None
    if lock is not None:
        return (Finding("deny", REQUEST_LOCKED, f"request {ctx.event.request_id} is locked "
                        f"until {format_time(lock.until)}"),)
    return ()
