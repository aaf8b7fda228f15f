"""One step of enforcement shared by the stream and the file replay.

Both shells call :func:`step` with the stored value for the event's key and get back the
value to store and the decisions to publish; only where bytes come from and go to differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policy.decide import decide
from policy.decisions import to_decisions
from policy.rules.clock import CLOCK_SKEW_CLASS, skew
from schemas._base import format_time, trusted_model
from schemas.decisions import Cause, Decision, DecisionSubject
from schemas.errors import InputError
from schemas.events import ClockTick, InputEvent, RequestCreated, RequestReviewed, Subject
from schemas.policy import LoadedPolicy
from schemas.state import STORED_STATE_VERSION, StoredSubject, SubjectState

__all__ = ["Step", "step", "tick"]

_SUBJECT_SET = frozenset(DecisionSubject.model_fields)


@dataclass(frozen=True, slots=True)
class Step:
    """What one event did: the subject's new stored value and the decisions to publish."""

    stored: StoredSubject
    decisions: tuple[Decision, ...]
    changed: bool


def step(
    stored: StoredSubject | None,
    event: InputEvent | ClockTick,
    policy: LoadedPolicy,
    cause: Cause,
    emitted_at: datetime | None = None,
    received: datetime | None = None,
) -> Step:
    """Decide one event against the subject's state in the event's tenant, at the broker's
    time ``received`` (per subject never earlier than its last decision), or at the event's
    own ``at`` when there is no broker time (a replay line without one, a tick).

    Raises:
        InputError: ``clock-skew`` for an event other than a request or a review whose
            ``at`` is further than ``time.max_skew_s`` from ``received``: it has no verdict
            to carry the refusal, so it is a dead letter (a skipped line in a replay).
    """
    if not isinstance(event, ClockTick | RequestCreated | RequestReviewed):
        tenant = policy.policy.for_tenant(event.tenant)
        untrusted = None if tenant is None else skew(event.at, received, tenant)
        if untrusted is not None:
            raise InputError(CLOCK_SKEW_CLASS, untrusted)
    stored = stored if stored is not None else StoredSubject()
    state = stored.tenants.get(event.tenant, SubjectState())
    new_state, verdicts = decide(state, event, event.at, policy.policy, received=received)
    if new_state is state:
        return Step(stored=stored, decisions=(), changed=False)
    # A new mapping, never a mutation: the table gets a fresh value to assign back.
    tenants = {**stored.tenants, event.tenant: new_state}
    # Kind and owner as the subject's requests stated them: reviews and session events may
    # name the subject by id alone, and one decision id must always carry one content.
    # Both models are built unvalidated: every value comes from a validated event or state
    # (validating again cost about 2.5 µs each, per event).
    subject = trusted_model(DecisionSubject, {"id": event.subject.id, "kind": new_state.kind,
                                              "owner": new_state.owner}, set(_SUBJECT_SET))
    return Step(
        stored=trusted_model(StoredSubject, {"v": STORED_STATE_VERSION, "tenants": tenants},
                             {"tenants"}),
        decisions=to_decisions(verdicts, event, policy.ref, cause, emitted_at, subject),
        changed=True,
    )


def tick(
    stored: StoredSubject,
    tenant: str,
    subject_id: str,
    at: datetime,
    policy: LoadedPolicy,
    emitted_at: datetime | None = None,
    coordinates: tuple[str, int, int] | None = None,
) -> Step:
    """Let event time reach ``at`` for one subject: whatever ran out by then ends.

    ``coordinates`` (topic, partition, offset) name the tick command in the stream.
    """
    state = stored.tenants.get(tenant, SubjectState())
    event = ClockTick(
        event_id=f"tick:{format_time(at)}",
        at=at,
        tenant=tenant,
        subject=Subject(id=subject_id, kind=state.kind, owner=state.owner),
    )
    topic, partition, offset = coordinates if coordinates is not None else (None, None, None)
    cause = Cause(event_id=event.event_id, type=event.type, topic=topic, partition=partition,
                  offset=offset)
    return step(stored, event, policy, cause, emitted_at)
