"""A request's ends on request: withdrawn, task completed, and an operator's signed lock
release."""

from __future__ import annotations

from policy.ledger import Ledger, resource_ids
from policy.releases import release_problem
from policy.rules.lifecycle import REQUEST_WITHDRAWN, TASK_COMPLETED
from policy.rules.locks import LOCK_RELEASED, RELEASE_NOT_AUTHORIZED
from schemas._base import format_time
from schemas.events import LockReleased, RequestWithdrawn, TaskCompleted
from schemas.policy import TenantPolicy

__all__ = ["on_lock_released", "on_task_completed", "on_withdrawn"]


def on_withdrawn(ledger: Ledger, event: RequestWithdrawn) -> None:
    grant = ledger.live(event.request_id)
    if grant is not None:
        ledger.revoke(grant, REQUEST_WITHDRAWN,
                      f"the subject withdrew it: grant {grant.request_id} revoked")
    waiting = ledger.waiting(event.request_id)
    if waiting is not None:
        ledger.pending.remove(waiting)
        ledger.deny(event.request_id, resource_ids(waiting.resources), REQUEST_WITHDRAWN,
                    "withdrawn while waiting for review")


def on_task_completed(ledger: Ledger, event: TaskCompleted) -> None:
    grant = ledger.live(event.request_id)
    if grant is not None:
        ledger.revoke(grant, TASK_COMPLETED,
                      f"its task is done: grant {grant.request_id} revoked")


def on_lock_released(ledger: Ledger, event: LockReleased, tenant: TenantPolicy) -> None:
    """Release what ``event.target`` names, if it is locked here and an operator the policy
    lists signed the release for someone else's lock (policy.releases)."""
    # A release names its target; one keyed to this subject but naming another changes
    # nothing here (the other subject's state lives under its own key).
    subject = event.target.subject == event.subject.id and ledger.locked_until is not None
    lock = ledger.request_lock(event.target.request_id)
    if not subject and lock is None:
        return  # nothing to release: nothing to authorize either
    problem = release_problem(event, tenant)
    if problem is not None:
        until = [format_time(held) for held in (ledger.locked_until if subject else None,
                                                 lock.until if lock is not None else None)
                 if held is not None]
        ledger.deny(event.target.request_id if lock is not None else None, (),
                    RELEASE_NOT_AUTHORIZED,
                    f"{problem}; the lock stays until {' and '.join(until)}")
        return
    if not ledger.remember_signed(event, tenant.time.max_skew_s, event.target.request_id,
                                  ()):
        return
    if subject:
        ledger.locked_until = None
        ledger.emit("unlock", LOCK_RELEASED, f"subject lock released by {event.by}")
    if lock is not None:
        ledger.request_locks.remove(lock)
        ledger.emit("unlock", LOCK_RELEASED, f"lock on {lock.request_id} released by {event.by}",
                    request_id=lock.request_id, targets=(lock.request_id,))
