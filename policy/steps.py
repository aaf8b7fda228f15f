"""One step of enforcement shared by the stream and the file replay.

Both shells call :func:`step` with the stored value for the event's key and get back the
value to store and the decisions to publish; only where bytes come from and go to differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policy.deadlines import holds
from policy.decide import decide_all
from policy.decisions import encode_decisions
from policy.ledger import Ledger, resource_ids
from policy.notices import to_notices
from policy.rules.bounds import STATE_LIMIT
from policy.rules.clock import CLOCK_SKEW_CLASS, skew, trusted_now
from schemas._base import format_time, trusted_model
from schemas.decisions import Cause, Decision, DecisionSubject
from schemas.errors import InputError
from schemas.events import (
    ClockTick,
    ExtensionRequested,
    InputEvent,
    RequestCreated,
    RequestReviewed,
    Subject,
    SubjectKind,
)
from schemas.notices import Notice
from schemas.policy import LoadedPolicy
from schemas.state import STORED_STATE_VERSION, StoredSubject, SubjectState

__all__ = ["Step", "refuse", "step", "tick", "vacant"]

_SUBJECT_SET = frozenset(DecisionSubject.model_fields)
_SKEW_DECIDED = (ClockTick, RequestCreated, ExtensionRequested, RequestReviewed)
"""Events whose skew :func:`policy.decide_all` decides (a tuple: ``A | B`` in the call
built a union type on every event)."""


@dataclass(frozen=True, slots=True)
class Step:
    """What one event did: the subject's new stored value, the decisions to publish (their
    wire bytes), and the notices (issue J) to publish on ``jit.notices``."""

    stored: StoredSubject
    encoded: tuple[bytes, ...]
    """Each decision's bytes for ``jit.decisions``, as
    :func:`streams.engine.codec.encode_decision` writes its model (issue M: made without
    the models, which only tools and tests read)."""
    changed: bool
    notices: tuple[Notice, ...] = ()

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """The decisions as models, read back (validated) from :attr:`encoded`."""
        return tuple([Decision.model_validate_json(value) for value in self.encoded])


def step(
    stored: StoredSubject | None,
    event: InputEvent | ClockTick,
    policy: LoadedPolicy,
    cause: Cause,
    emitted_at: datetime | None = None,
    received: datetime | None = None,
    raw: bytes | None = None,
) -> Step:
    """Decide one event against the subject's state in the event's tenant, at the broker's
    time ``received`` (per subject never earlier than its last decision), or at the event's
    own ``at`` when there is no broker time (a replay line without one, a tick). ``raw``:
    the bytes the event was read from, for its redelivery mark (:func:`policy.decide_all`).

    Raises:
        InputError: ``clock-skew`` for an event other than a request or a review whose
            ``at`` is further than ``time.max_skew_s`` from ``received``: it has no verdict
            to carry the refusal, so it is a dead letter (a skipped line in a replay).
    """
    if not isinstance(event, _SKEW_DECIDED):
        tenant = policy.policy.for_tenant(event.tenant)
        untrusted = None if tenant is None else skew(event.at, received, tenant)
        if untrusted is not None:
            raise InputError(CLOCK_SKEW_CLASS, untrusted)
    stored = stored if stored is not None else StoredSubject()
    held = stored.tenants.get(event.tenant)
    state = held if held is not None else SubjectState()
    others = len(stored.tenants) if held is None else 0
    decided = decide_all(state, event, event.at, policy.policy, received=received,
                         others=others, raw=raw)
    new_state, verdicts = decided.state, decided.verdicts
    if new_state is state:
        return Step(stored=stored, encoded=(), changed=False)
    # A new mapping, never a mutation: the table gets a fresh value to assign back. An
    # event that would start a tenant's state with nothing live or remembered but its own
    # id (one that decides nothing, or is refused: unknown tenant, too many tenants) starts
    # none, so such events leave nothing behind; a redelivery of a refused one repeats its
    # verdict with the same decision_id. A tenant already stored keeps its redelivery
    # memory even when nothing else is left.
    if held is None and vacant(new_state):
        if not verdicts:
            return Step(stored=stored, encoded=(), changed=False)
        tenants = dict(stored.tenants)
    elif isinstance(event, ClockTick) and vacant(new_state):
        # Expiry emptied the tenant (its last grant, lock or remembered id ran out): it is
        # dropped, redelivery memory and all, and with its last tenant the whole value (a
        # delete). Safe: what ran out last is a remembered request id or signed event,
        # kept far longer than a redelivery can come late, or a grant or lock whose
        # events, long committed, are not redelivered.
        tenants = {name: kept for name, kept in stored.tenants.items() if name != event.tenant}
    else:
        tenants = {**stored.tenants, event.tenant: new_state}
    subject = _subject(event, new_state)
    return Step(
        stored=trusted_model(StoredSubject, {"v": STORED_STATE_VERSION, "tenants": tenants},
                             {"tenants"}),
        encoded=encode_decisions(verdicts, event.tenant, subject, policy.ref, cause,
                                 emitted_at) if verdicts else (),
        changed=True,
        notices=to_notices(decided.notices, event.tenant, _decision_subject(subject),
                           policy.ref, cause, emitted_at) if decided.notices else (),
    )


def vacant(state: SubjectState) -> bool:
    """Nothing live or remembered that a later decision reads: no grants, pending requests,
    locks, sessions, rate or break-glass history, seen pairs, remembered request ids or
    signed events, and no fixed kind (redelivery
    memory, ``applied``, and the decision ``clock`` aside: a subject with nothing else
    stored has nothing a later decision at an earlier time could reopen)."""
    return not (holds(state) or state.sessions or state.recent_requests
                or state.break_glass_uses or state.seen or state.kind_fixed)


def _subject(event: InputEvent | ClockTick, state: SubjectState | Ledger
             ) -> tuple[str, SubjectKind, str | None]:
    # Kind and owner as the subject's requests stated them: reviews and session events may
    # name the subject by id alone, and one decision id must always carry one content.
    return event.subject.id, state.kind, state.owner


def _decision_subject(subject: tuple[str, SubjectKind, str | None]) -> DecisionSubject:
    # Built unvalidated: every value comes from a validated event or state (validating
    # again cost about 2.5 µs per event). Only notices, rarer than decisions, need it.
    subject_id, kind, owner = subject
    return trusted_model(DecisionSubject, {"id": subject_id, "kind": kind, "owner": owner},
                         set(_SUBJECT_SET))


def refuse(
    stored: StoredSubject | None,
    event: InputEvent | ClockTick,
    policy: LoadedPolicy,
    cause: Cause,
    reason: str,
    emitted_at: datetime | None = None,
    received: datetime | None = None,
) -> Step:
    """The answer to an event whose new state could not be stored (the shells' size check):
    a ``deny`` by state-limit, the stored value unchanged, at the time :func:`step` would
    have decided it (the broker's ``received``, never before the subject's clock). A tick
    gets no decision."""
    stored = stored if stored is not None else StoredSubject()
    if isinstance(event, ClockTick):
        return Step(stored=stored, encoded=(), changed=False)
    state = stored.tenants.get(event.tenant, SubjectState())
    ledger = Ledger(state, event, trusted_now(state.clock, event.at, received))
    ledger.deny(getattr(event, "request_id", None),
                resource_ids(event.resources) if isinstance(event, RequestCreated) else (),
                STATE_LIMIT, reason)
    return Step(stored=stored, encoded=encode_decisions(
        tuple(ledger.verdicts), event.tenant, _subject(event, ledger), policy.ref, cause,
        emitted_at), changed=False)


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
