"""``session.*``: what a subject does with its access must be covered by a live grant.

A session may overtake the approval of the grant it names (requests and sessions are
separate topics), so a session on a grant not seen yet is *held* for ``sessions.grace_s``.
The grace is only for that: a session on a grant this subject's state knows ended locks at
once. A held session's activity is checked like any other (activity on the resource it
waits for is what the hold itself decides), it settles the moment its grant arrives
(:func:`settle_sessions`), and nothing drops it before then: neither ``session.ended`` nor
newer sessions (:func:`_bound`), so a due lock always comes.

A session event is judged as of its own trusted time (``Ledger.event_time``, its broker
time), though decided at the subject's clock when that is later: a grant made after it
never covers it. An honest gateway opens a session only once it saw the approval, so a
held session settles only on a grant made at or before the session began; a later one
locks the subject. Otherwise a subject could legitimise what it did afterwards whenever the
stream decides its session record after a later request (issue H, one order for stream and
replay).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from policy.deadlines import expire
from policy.ledger import Ledger
from policy.rules.sessions import SESSION_OUT_OF_SCOPE, SESSION_WITHOUT_GRANT
from schemas._base import format_time
from schemas.events import SessionActivity, SessionEnded, SessionStarted
from schemas.policy import TenantPolicy
from schemas.state import Session

__all__ = ["on_session_activity", "on_session_ended", "on_session_started", "settle_sessions"]


def on_session_started(ledger: Ledger, event: SessionStarted, tenant: TenantPolicy) -> None:
    grant = ledger.live(event.request_id)
    if grant is not None and not _judged(ledger, event.session_id, event.request_id,
                                         event.resource, ledger.event_time, ledger.now):
        return
    if grant is None and ledger.has_ended(event.request_id):
        ledger.lock_subject(ledger.now + timedelta(seconds=ledger.lock_s), SESSION_WITHOUT_GRANT,
                            f"session {event.session_id} used request {event.request_id}, "
                            "whose grant of this subject already ended", event.request_id)
        return
    # Without a live grant the session waits for one: its approval may still be on its way.
    held = None if grant is not None else ledger.now + timedelta(seconds=tenant.sessions.grace_s)
    ledger.sessions.append(Session(event.session_id, event.request_id, event.resource,
                                   ledger.event_time, held))
    _bound(ledger, tenant, event)
    if held is not None and tenant.sessions.grace_s == 0:
        expire(ledger, ledger.now)


def _bound(ledger: Ledger, tenant: TenantPolicy, event: SessionStarted) -> None:
    """Keep at most ``sessions.max_tracked`` sessions: the oldest settled ones are forgotten
    (their activity is checked against live grants either way); held ones never are. When
    every tracked session is held, the new one cannot be remembered: the subject is
    locked now, which is the most its hold could have led to (fail closed)."""
    limit = tenant.sessions.max_tracked
    while len(ledger.sessions) > limit:
        oldest = next((s for s in ledger.sessions if s.held_until is None), None)
        if oldest is None:
            ledger.sessions.pop()  # the new one, held: its lock is made here
            ledger.lock_subject(ledger.now + timedelta(seconds=ledger.lock_s),
                                SESSION_WITHOUT_GRANT,
                                f"session {event.session_id} on request {event.request_id} "
                                f"would be one more than {limit} sessions waiting for grants "
                                "not seen yet (sessions.max_tracked)", event.request_id)
            return
        ledger.sessions.remove(oldest)


def on_session_activity(ledger: Ledger, event: SessionActivity, tenant: TenantPolicy) -> None:
    session = next((s for s in ledger.sessions if s.session_id == event.session_id), None)
    if (session is not None and session.held_until is not None
            and event.resource == session.resource):
        return  # what the hold decides: a grant covering it arrives in time, or a lock
    if ledger.covering(None, event.resource, by=ledger.event_time) is None:
        ledger.lock_subject(ledger.now + timedelta(seconds=tenant.locks.default_s),
                            SESSION_OUT_OF_SCOPE,
                            f"session {event.session_id} did {event.action!r} on "
                            f"{event.resource}, which no live grant covers",
                            session.request_id if session is not None else None)


def on_session_ended(ledger: Ledger, event: SessionEnded) -> None:
    """A settled session is forgotten; a held one stays until its hold is decided."""
    ledger.sessions = [s for s in ledger.sessions
                       if s.session_id != event.session_id or s.held_until is not None]


def settle_sessions(ledger: Ledger, now: datetime) -> None:
    """Held sessions whose grant is live now are settled: their wait is over when it covers
    their resource and was made by the time they began, and the subject is locked at once
    when not. Held sessions whose grant was made and ended within this event lock at once
    too."""
    for session in [s for s in ledger.sessions if s.held_until is not None]:
        if ledger.live(session.request_id) is not None:
            index = ledger.sessions.index(session)
            if _judged(ledger, session.session_id, session.request_id, session.resource,
                       session.started_at, now):
                ledger.sessions[index] = replace(session, held_until=None)
            else:
                del ledger.sessions[index]
        elif ledger.has_ended(session.request_id):
            ledger.sessions.remove(session)
            ledger.lock_subject(now + timedelta(seconds=ledger.lock_s), SESSION_WITHOUT_GRANT,
                                f"session {session.session_id} used request "
                                f"{session.request_id}, whose grant of this subject ended",
                                session.request_id)


def _judged(ledger: Ledger, session_id: str, request_id: str, resource: str,
            began: datetime, at: datetime) -> bool:
    """Whether the live grant of ``request_id`` covers a session on ``resource`` that began
    at ``began`` (its own time); when it does not, the subject is locked at ``at``."""
    grant = ledger.covering(request_id, resource)
    if grant is None:
        ledger.lock_subject(at + timedelta(seconds=ledger.lock_s), SESSION_OUT_OF_SCOPE,
                            f"session {session_id} opened {resource} on grant {request_id}, "
                            "which does not cover it", request_id)
        return False
    if grant.granted_at > began:
        ledger.lock_subject(at + timedelta(seconds=ledger.lock_s), SESSION_WITHOUT_GRANT,
                            f"session {session_id} began at {format_time(began)} on request "
                            f"{request_id}, whose grant was made later, at "
                            f"{format_time(grant.granted_at)}", request_id)
        return False
    return True
