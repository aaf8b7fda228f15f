"""``session.*``: what a subject does with its access must be covered by a live grant."""

from __future__ import annotations

from datetime import timedelta

from policy.deadlines import expire
from policy.ledger import Ledger
from policy.rules.sessions import SESSION_OUT_OF_SCOPE
from schemas.events import SessionActivity, SessionEnded, SessionStarted
from schemas.policy import TenantPolicy
from schemas.state import Session

__all__ = ["on_session_activity", "on_session_ended", "on_session_started"]


def on_session_started(ledger: Ledger, event: SessionStarted, tenant: TenantPolicy) -> None:
    grant = ledger.live(event.request_id)
    if grant is not None and ledger.covering(event.request_id, event.resource) is None:
        ledger.lock_subject(ledger.now + timedelta(seconds=tenant.locks.default_s),
                            SESSION_OUT_OF_SCOPE,
                            f"session {event.session_id} opened {event.resource} on grant "
                            f"{event.request_id}, which does not cover it", event.request_id)
        return
    # Without a live grant the session waits for one: its approval may still be on its way.
    held = None if grant is not None else ledger.now + timedelta(seconds=tenant.sessions.grace_s)
    ledger.sessions.append(Session(event.session_id, event.request_id, event.resource,
                                   ledger.now, held))
    del ledger.sessions[:-tenant.sessions.max_tracked]
    if held is not None and tenant.sessions.grace_s == 0:
        expire(ledger, ledger.now)


def on_session_activity(ledger: Ledger, event: SessionActivity, tenant: TenantPolicy) -> None:
    session = next((s for s in ledger.sessions if s.session_id == event.session_id), None)
    if session is not None and session.held_until is not None:
        return  # decided when the hold ends: with a covering grant or by a lock
    if ledger.covering(None, event.resource) is None:
        ledger.lock_subject(ledger.now + timedelta(seconds=tenant.locks.default_s),
                            SESSION_OUT_OF_SCOPE,
                            f"session {event.session_id} did {event.action!r} on "
                            f"{event.resource}, which no live grant covers",
                            session.request_id if session is not None else None)


def on_session_ended(ledger: Ledger, event: SessionEnded) -> None:
    ledger.sessions = [s for s in ledger.sessions if s.session_id != event.session_id]
