"""The pure decision function: ``decide(state, event, now, policy) -> (new_state, verdicts)``.

No clock, no I/O, no environment: the same inputs always give the same outputs, which is
what lets a file replay (``simulate``) stand as the oracle for the stream. Errors inside
evaluation come back as a ``deny`` verdict, never as an exception and never as an approve.

This module holds what applies to every event: redelivery memory, the unknown tenant, the
expiries that come first, the dispatch to a handler (policy.handlers) and failing closed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from policy.deadlines import expire, forgotten
from policy.handlers.extension import on_extension_requested
from policy.handlers.lifecycle import on_lock_released, on_task_completed, on_withdrawn
from policy.handlers.request import on_request_created
from policy.handlers.review import on_review
from policy.handlers.sessions import (
    on_session_activity,
    on_session_ended,
    on_session_started,
    settle_sessions,
)
from policy.ledger import Ledger, id_mark
from policy.notices import NoticeDraft
from policy.rules.base import Rule
from policy.rules.bounds import STATE_LIMIT, tenants_reason
from policy.rules.clock import CLOCK_SKEW, skew, trusted_now
from policy.rules.failure import EVALUATION_ERROR, UNKNOWN_TENANT
from policy.verdicts import Verdict
from schemas.events import (
    ClockTick,
    ExtensionRequested,
    InputEvent,
    LockReleased,
    RequestCreated,
    RequestReviewed,
    RequestWithdrawn,
    SessionActivity,
    SessionEnded,
    SessionStarted,
    TaskCompleted,
)
from schemas.policy import Policy, TenantPolicy
from schemas.state import SubjectState

__all__ = ["APPLIED_EVENT_MEMORY", "V1_MARK_LENGTH", "Decided", "applied_mark", "applied_mark_v1",
           "decide", "decide_all"]

APPLIED_EVENT_MEMORY = 64
"""How many recent events (:func:`applied_mark`) a subject remembers to drop redeliveries.

At-least-once delivery redelivers only events after the last committed offset (seconds of
traffic), so one subject seeing more than this many events in that window is not expected.
"""


def applied_mark(event: InputEvent, received: datetime | None = None,
                 raw: bytes | None = None) -> str:
    """The mark ``SubjectState.applied`` keeps of an applied record (mark v2, issue M): 18
    hex of a BLAKE2b hash (personal ``jitwatch-mark/v2``) of the record's own bytes
    (``raw``, leading and trailing whitespace left out; without them, the event as
    validated, serialized) and the broker time it was appended at (``received``; none for a
    replay line without one).

    A redelivery is the same record again, so it has the same mark and is dropped. An event
    that only shares an id is another event, and the same event appended at another time is
    another record: both are decided. Keyed on ids alone, a subject who guessed the id a
    gateway or task runner would use next could send a harmless event under it first and
    have the real one dropped as a "redelivery"; keyed on the event alone, it could send the
    gateway's exact future activity while its grant was live and have the real record,
    arriving after the grant ended, dropped (issue H, adversarial reviews). The bytes, not
    the validated event, so that no event is serialized again only to be hashed; marks of
    version 1 (:func:`applied_mark_v1`), stored before, are still recognised."""
    digest = hashlib.blake2b(
        raw.strip() if raw is not None else event.__pydantic_serializer__.to_json(event),
        digest_size=_V2_BYTES, person=b"jitwatch-mark/v2")
    if received is not None:
        # JSON bytes never hold a raw NUL: the time cannot be read as part of the record.
        digest.update(b"\0" + received.isoformat().encode())
    return digest.hexdigest()


_V2_BYTES = 9
"""A mark v2 is 18 hex characters, a v1 mark 16: the lengths tell them apart."""

V1_MARK_LENGTH = 16
"""The length of a mark of version 1 (:func:`applied_mark_v1`)."""


def applied_mark_v1(event: InputEvent, received: datetime | None = None) -> str:
    """The mark of version 1 (issue H, stored until issue M): 16 hex of a BLAKE2b hash of
    the whole event as validated (serialized again) and its broker time. Recognised, never
    written: a record decided before an upgrade and redelivered after it is still a
    redelivery."""
    digest = hashlib.blake2b(event.__pydantic_serializer__.to_json(event), digest_size=8)
    if received is not None:
        digest.update(received.isoformat().encode())
    return digest.hexdigest()


def _redelivered(state: SubjectState, event: InputEvent, mark: str,
                 received: datetime | None) -> bool:
    # A plain event id in ``applied`` is a value stored before marks (it ages out after
    # APPLIED_EVENT_MEMORY events); a mark is never a plain id an attacker can choose, short
    # of a preimage of the hash. A v1 mark (16 characters: a plain id of that length only
    # costs the v1 hash) is looked for only while one may still be stored.
    applied = state.applied
    return mark in applied or event.event_id in applied or bool(
        state.signed and _replayed(state, event)) or (
        V1_MARK_LENGTH in map(len, applied)
        and applied_mark_v1(event, received) in applied)


_SIGNED = (RequestReviewed, LockReleased)
"""The event types that count only when signed, and are remembered when they did."""


def _replayed(state: SubjectState, event: InputEvent) -> bool:
    """Whether ``event`` is a signed event already applied and still remembered (issue H):
    dropped as a redelivery, however many events came since."""
    if not isinstance(event, _SIGNED):
        return False
    mark = id_mark(event.event_id)
    return any(item.mark == mark for item in state.signed)


def _apply(ledger: Ledger, event: InputEvent, tenant: TenantPolicy) -> dict[str, object]:
    """The one dispatch from event type to handler; returns the state fields it changed
    beyond the ledger's (grants, pending, locks)."""
    match event:
        case RequestCreated():
            return on_request_created(ledger, event, tenant)
        case ExtensionRequested():
            return on_extension_requested(ledger, event, tenant)
        case RequestReviewed():
            return on_review(ledger, event, tenant)
        case RequestWithdrawn():
            on_withdrawn(ledger, event)
        case TaskCompleted():
            on_task_completed(ledger, event)
        case LockReleased():
            on_lock_released(ledger, event, tenant)
        case SessionStarted():
            on_session_started(ledger, event, tenant)
        case SessionActivity():
            on_session_activity(ledger, event, tenant)
        case SessionEnded():
            on_session_ended(ledger, event)
    return {}


@dataclass(frozen=True, slots=True)
class Decided:
    """What :func:`decide_all` returns: the new state, its verdicts, and its notices
    (issue J: for ``jit.notices``, never the decisions topic)."""

    state: SubjectState
    verdicts: tuple[Verdict, ...]
    notices: tuple[NoticeDraft, ...] = ()


def _refused(state: SubjectState, event: InputEvent, applied: tuple[str, ...], now: datetime,
             clock: datetime | None, rule: Rule, reason: str) -> Decided:
    """Deny an event before any handler, at decision time ``now``: only its id (and the
    subject's ``clock``) is remembered, so a tenant left otherwise empty is not stored at
    all (policy.steps)."""
    refused = Ledger(state, event, now)
    refused.deny(getattr(event, "request_id", None), (), rule, reason)
    return Decided(replace(state, applied=applied, kind=refused.kind, owner=refused.owner,
                           clock=clock), tuple(refused.verdicts))


def decide(
    state: SubjectState, event: InputEvent | ClockTick, now: datetime, policy: Policy,
    *, received: datetime | None = None, others: int = 0, raw: bytes | None = None,
) -> tuple[SubjectState, tuple[Verdict, ...]]:
    """:func:`decide_all` without its notices: the new state and the verdicts."""
    decided = decide_all(state, event, now, policy, received=received, others=others,
                         raw=raw)
    return decided.state, decided.verdicts


def decide_all(
    state: SubjectState, event: InputEvent | ClockTick, now: datetime, policy: Policy,
    *, received: datetime | None = None, others: int = 0, raw: bytes | None = None,
) -> Decided:
    """Apply one event to one subject's state in one tenant.

    ``received`` is the broker's time for the event (issue H, trusted time): the event is
    decided at it, or at the subject's last decision time if that is later (``now`` is then
    not read), and its claimed ``at`` only counts for its skew: a request or review further
    than ``time.max_skew_s`` from ``received`` is denied (``clock-skew``) and not applied.
    Without ``received`` (a replay line with no broker time, a tick) ``now`` is the time.

    ``others`` is how many other tenants the subject holds state in when it holds none in
    this one (``limits.max_tenants``: from that many on, the event is denied, rule
    state-limit, and starts no state here).

    ``raw`` is the record's own bytes (the stream's record value, a replay's line), what
    its redelivery mark is made of (:func:`applied_mark`); without them the event is
    serialized for it.

    Whatever ran out by the decision time (grants, pending reviews, locks) ends first. A
    redelivered event (its id already applied, or a signed review or release whose mark is
    still kept in ``state.signed``) returns the state unchanged and no verdict. A
    :class:`ClockTick` only ends what ran out; it is not remembered as applied, since
    running it again finds nothing left to end.

    Notices (issue J) due by the decision time come with it: an expiry notice
    (``notices.before_expiry_s``) moves the grant's ``notice_at`` on, so each is given once.
    """
    if isinstance(event, ClockTick):
        ledger = Ledger(state, event)
        tenant = policy.for_tenant(event.tenant)
        if tenant is not None:
            ledger.lock_s = tenant.locks.default_s
            ledger.notice_before = tenant.notices.before_expiry_s
        expire(ledger, now)
        sessions = tuple(ledger.sessions)
        if (not ledger.verdicts and sessions == state.sessions
                and len(ledger.requested) == len(state.requested)
                and len(ledger.signed) == len(state.signed)
                and ledger.obligations == list(state.obligations)
                and ledger.grants == list(state.grants)) and not forgotten(state, now):
            return Decided(state, ())
        ended = replace(state, grants=tuple(ledger.grants), pending=tuple(ledger.pending),
                        request_locks=tuple(ledger.request_locks),
                        locked_until=ledger.locked_until, sessions=sessions,
                        ended=tuple(ledger.ended), requested=tuple(ledger.requested),
                        signed=tuple(ledger.signed), obligations=tuple(ledger.obligations))
        # Quiet past forget_at with nothing left: an empty state (policy.steps drops it).
        return Decided(SubjectState() if forgotten(ended, now) else ended,
                       tuple(ledger.verdicts), tuple(ledger.notices))
    mark = applied_mark(event, received, raw)
    if _redelivered(state, event, mark, received):
        return Decided(state, ())
    applied = (*state.applied, mark)[-APPLIED_EVENT_MEMORY:]
    if received is not None:
        now = trusted_now(state.clock, event.at, received)
    clock = state.clock if received is None else now
    tenant = policy.for_tenant(event.tenant)
    if tenant is None:
        return _refused(state, event, applied, now, clock, UNKNOWN_TENANT,
                        f"tenant {event.tenant!r} is not in policy {policy.version}")
    crowded = tenants_reason(others, tenant) if others else None
    if crowded is not None:
        return _refused(state, event, applied, now, clock, STATE_LIMIT, crowded)
    ledger = Ledger(state, event, now, event_time=received)
    ledger.lock_s = tenant.locks.default_s
    ledger.notice_before = tenant.notices.before_expiry_s
    try:
        expire(ledger, now)
        untrusted = skew(event.at, received, tenant)
        if untrusted is None and received is not None and isinstance(event, _SIGNED):
            # A signed event is remembered until its at + max_skew_s (state.signed); past
            # that, measured on the subject's own clock too, its bytes are refused, so a
            # replay never finds its mark forgotten and its time still believed.
            untrusted = skew(event.at, now, tenant)
        if untrusted is not None:
            ledger.deny(getattr(event, "request_id", None), (), CLOCK_SKEW, untrusted)
            changed: dict[str, object] = {}
        else:
            changed = _apply(ledger, event, tenant)
            if ledger.sessions:
                settle_sessions(ledger, ledger.now)
    except Exception as exc:  # noqa: BLE001 - errors are data here: the event is denied.
        failed = Ledger(state, event, now)
        failed.deny(getattr(event, "request_id", None), (), EVALUATION_ERROR,
                    f"policy evaluation failed ({type(exc).__name__}: {exc}); denied to "
                    "fail closed")
        return Decided(replace(state, applied=applied, kind=failed.kind, owner=failed.owner,
                               clock=clock), tuple(failed.verdicts))
    # One construction per event (dataclasses.replace costs more than a decision here).
    new_state = SubjectState(
        grants=tuple(ledger.grants),
        applied=applied,
        pending=tuple(ledger.pending),
        locked_until=ledger.locked_until,
        request_locks=tuple(ledger.request_locks),
        sessions=tuple(ledger.sessions),
        recent_requests=changed.get("recent_requests", state.recent_requests),  # type: ignore[arg-type]
        break_glass_uses=changed.get("break_glass_uses", state.break_glass_uses),  # type: ignore[arg-type]
        seen=changed.get("seen", state.seen),  # type: ignore[arg-type]
        kind=ledger.kind,
        owner=ledger.owner,
        kind_fixed=changed.get("kind_fixed", state.kind_fixed),  # type: ignore[arg-type]
        clock=clock,
        ended=tuple(ledger.ended),
        requested=tuple(ledger.requested),
        signed=tuple(ledger.signed),
        forget_at=_forget_at(state, ledger.now, tenant),
        obligations=tuple(ledger.obligations),
    )
    return Decided(new_state, tuple(ledger.verdicts), tuple(ledger.notices))


def _forget_at(state: SubjectState, now: datetime, tenant: TenantPolicy) -> datetime:
    """``SubjectState.forget_at`` after an event applied at ``now``: the request-id
    retention, or the rate or break-glass window when longer, from the subject's latest
    event (never earlier than before)."""
    hold = max(tenant.limits.request_retention_s, tenant.baseline.window_s,
               tenant.break_glass.window_s)
    try:
        until = now + timedelta(seconds=hold)
    except OverflowError:  # at the end of time: never forgotten (extreme times never raise)
        until = datetime.max.replace(tzinfo=UTC)
    return until if state.forget_at is None or until > state.forget_at else state.forget_at
