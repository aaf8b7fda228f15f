"""The stored value's size bound, as the stream and the replay both apply it (issue H).

A subject's state goes to the changelog as one Kafka message; one too large would fail
there after the batch's verdicts went out, and the partition's commits would stall on it.
So each new value is encoded and measured before anything is sent: one that would pass
the limit is not stored, and the event that made it gets a ``deny`` (state-limit) instead
of its verdicts. The stream also dead-letters that record (``state-oversized``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policy import Step, refuse
from schemas.decisions import Cause
from schemas.events import ClockTick, InputEvent
from schemas.policy import LoadedPolicy
from schemas.state import StoredSubject
from streams.engine.codec import encode_stored

__all__ = ["Fitted", "fit"]


@dataclass(frozen=True, slots=True)
class Fitted:
    """A step whose new value fits: what to publish, and what to store."""

    step: Step
    value: bytes | None
    """The encoded value to store, None to delete the key (no tenant left)."""
    oversized: str | None = None
    """Why the step was refused (its value did not fit), else None."""


def fit(result: Step, before: StoredSubject | None, event: InputEvent | ClockTick | None,
        policy: LoadedPolicy, cause: Cause | None, max_stored_bytes: int,
        emitted_at: datetime | None = None, received: datetime | None = None) -> Fitted:
    """``result`` (a changed step) as it may be stored, or refused when it does not fit.

    ``received`` is the broker time the step was decided at (a refusal is decided at the
    same trusted time, :func:`policy.refuse`).

    ``event`` and ``cause`` None: the step was an expiry tick, refused without a decision.
    """
    if not result.stored.tenants:
        return Fitted(result, None)
    value = encode_stored(result.stored)
    if len(value) <= max_stored_bytes:
        return Fitted(result, value)
    reason = (f"the subject's new state would take {len(value)} bytes, limit is "
              f"{max_stored_bytes} (JITWATCH_MAX_STORED_BYTES); nothing changed")
    if event is None or cause is None:
        unchanged = Step(stored=before or StoredSubject(), encoded=(), changed=False)
        return Fitted(unchanged, None, reason)
    return Fitted(refuse(before, event, policy, cause, reason, emitted_at, received), None,
                  reason)
