"""Time running out: when a subject's next deadline falls, and what ends when it does.

Grants, pending reviews, locks and sessions waiting for their grant all end in event time:
``decide`` ends whatever ran out by an event's time before deciding the event, and the
stream's timer asks :func:`next_deadline` when to send a clock tick for a quiet subject.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from policy.ledger import Ledger, resource_ids
from policy.notices import next_notice_at
from policy.rules.break_glass import POST_REVIEW_OVERDUE
from policy.rules.lifetime import TTL_EXPIRED
from policy.rules.locks import LOCK_EXPIRED
from policy.rules.review import PENDING_EXPIRED
from policy.rules.sessions import SESSION_WITHOUT_GRANT
from schemas._base import format_time
from schemas.state import Grant, Obligation, Pending, RequestLock, Session, SubjectState

__all__ = ["expire", "forgotten", "holds", "next_deadline"]


def next_deadline(state: SubjectState) -> datetime | None:
    """When something of this subject next runs out or is noticed (grant, its next expiry
    notice, pending review, lock, a remembered id: marks are kept in expiry order, so the
    first of each is the earliest), or, with nothing live left, when it is forgotten
    (``SubjectState.forget_at``)."""
    # A grant's next notice (issue J) always comes before its expiry.
    moments = [grant.expires_at if grant.notice_at is None else grant.notice_at
               for grant in state.grants]
    moments += [marks[0].until for marks in (state.requested, state.signed) if marks]
    moments += [item.pending_until for item in state.pending]
    moments += [lock.until for lock in state.request_locks]
    moments += [session.held_until for session in state.sessions
                if session.held_until is not None]
    moments += [item.deadline for item in state.obligations if item.deadline is not None]
    if state.locked_until is not None:
        moments.append(state.locked_until)
    if not moments and state.obligations:
        return None  # only overdue post-reviews: kept, with nothing to tick for
    # Nothing live with an end: the subject is forgotten at forget_at. An open session
    # without a hold needs no deadline: with no grant left it covers nothing, and a session
    # whose session.ended never comes must not keep its subject stored for ever.
    return min(moments) if moments else state.forget_at


def holds(state: SubjectState) -> bool:
    """Whether the subject holds anything live or remembered that runs out in time: grants,
    pending requests, locks, sessions waiting for their grant, remembered request ids and
    signed events, post-review obligations (what keeps it stored past ``forget_at``)."""
    return bool(state.grants or state.pending or state.locked_until is not None
                or state.request_locks or state.requested or state.signed
                or state.obligations
                or any(session.held_until is not None for session in state.sessions))


def forgotten(state: SubjectState, now: datetime) -> bool:
    """Whether a subject with this state is forgotten at ``now``: its ``forget_at`` has come
    and it :func:`holds` nothing (the history it still holds is then dropped, open sessions
    with it: with no grant left they cover nothing)."""
    return state.forget_at is not None and state.forget_at <= now and not holds(state)


def expire(ledger: Ledger, now: datetime) -> None:
    """Everything whose time ran out by ``now`` ends first, oldest first across kinds.

    Keys name the thing that ended, not the event that noticed: the stream's timer and a
    file replay notice an expiry through different events but must agree on its id.

    One at a time, looking again after each: an end may end or add others (a held session
    that runs out locks the subject, which ends its grants; that lock may itself have run
    out by ``now``), as ticks at every deadline would have it (issue I: the stream decides
    an event after several deadlines when their ticks are still held).
    """
    for marks in (ledger.requested, ledger.signed):
        # Forgotten without a verdict: a remembered id only refuses, it holds nothing.
        while marks and marks[0].until <= now:
            del marks[0]
    done: set[tuple[datetime, int, str]] = set()
    while (first := _first_due(ledger, now)) is not None:
        moment, kind, _, name, end = first
        if (moment, kind, name) in done:
            return  # an end that changed nothing: never loop on it (the next call retries)
        done.add((moment, kind, name))
        end()


_Due = tuple[datetime, int, int, str, Callable[[], None]]
"""(when, kind, position, what, its end): ordered by the first three."""


def _first_due(ledger: Ledger, now: datetime) -> _Due | None:
    """What ran out first by ``now`` (earliest, then by kind and position)."""
    due: list[_Due] = []
    for number, grant in enumerate(ledger.grants):
        if grant.notice_at is not None and grant.notice_at <= now:
            for moment in _notice_moments(ledger, grant, grant.notice_at, now):
                due.append((moment, 6, number, grant.request_id,
                            partial(_expiry_notice, ledger, grant.request_id, moment)))
        if grant.expires_at <= now:
            due.append((grant.expires_at, 0, number, grant.request_id,
                        partial(_grant_ran_out, ledger, grant.request_id)))
    for number, item in enumerate(ledger.pending):
        if item.pending_until <= now:
            due.append((item.pending_until, 1, number, item.request_id,
                        partial(_review_ran_out, ledger, item)))
    if ledger.locked_until is not None and ledger.locked_until <= now:
        due.append((ledger.locked_until, 2, 0, "", partial(_subject_lock_ran_out, ledger)))
    for number, lock in enumerate(ledger.request_locks):
        if lock.until <= now:
            due.append((lock.until, 3, number, lock.request_id,
                        partial(_request_lock_ran_out, ledger, lock)))
    for number, session in enumerate(ledger.sessions):
        if session.held_until is not None and session.held_until <= now:
            due.append((session.held_until, 4, number, session.session_id,
                        partial(_session_hold_ran_out, ledger, session)))
    for number, owed in enumerate(ledger.obligations):
        if owed.deadline is not None and owed.deadline <= now:
            due.append((owed.deadline, 5, number, owed.request_id,
                        partial(_review_overdue, ledger, owed)))
    if not due:
        return None  # the usual case: nothing ran out
    return min(due, key=lambda item: item[:3])


def _notice_moments(ledger: Ledger, grant: Grant, first: datetime, now: datetime
                    ) -> list[datetime]:
    """The expiry notices of ``grant`` due by ``now``: ``first`` (its ``notice_at``) and
    the policy's later moments before its expiry, each one notice whichever tick or event
    finds it due (``first`` counts even if the policy changed since it was set)."""
    later = [grant.expires_at - timedelta(seconds=before) for before in ledger.notice_before]
    return sorted({first, *[moment for moment in later
                            if first < moment <= now and moment < grant.expires_at]})


def _expiry_notice(ledger: Ledger, request_id: str, moment: datetime) -> None:
    """Issue J: the grant expires soon; its next notice moves to the next moment."""
    grant = ledger.live(request_id)
    if grant is None or grant.notice_at is None or grant.notice_at > moment:
        return  # ended meanwhile, or this one was already sent
    ledger.notice("expiry-soon", moment, request_id, resource_ids(grant.resources),
                  grant.expires_at, f"grant {request_id} expires at "
                  f"{format_time(grant.expires_at)}; ask for an extension to keep it")
    ledger.grants[ledger.grants.index(grant)] = replace(
        grant, notice_at=next_notice_at(grant.expires_at, ledger.notice_before, moment))


def _grant_ran_out(ledger: Ledger, request_id: str) -> None:
    grant = ledger.live(request_id)
    if grant is None:  # ended meanwhile (a lock earlier in the same pass)
        return
    ledger.revoke(grant, TTL_EXPIRED,
                  f"grant {grant.request_id} reached its expiry at "
                  f"{format_time(grant.expires_at)}",
                  at=grant.expires_at,
                  key=f"expire:{grant.request_id}:{format_time(grant.expires_at)}")


def _review_overdue(ledger: Ledger, item: Obligation) -> None:
    """Issue J: a break-glass post-review not done in time escalates, and stays open."""
    ledger.obligations[ledger.obligations.index(item)] = replace(item, deadline=None)
    reason = (f"the post-review of break-glass {item.request_id} was due at "
              f"{format_time(item.due)} and is not done; the subject may not break glass "
              "until it is")
    ids = resource_ids(item.resources)
    ledger.emit("escalate", POST_REVIEW_OVERDUE, reason, at=item.due,
                request_id=item.request_id, resources=ids, post_review=True,
                key=f"overdue:{item.request_id}:{format_time(item.due)}")
    # Issue J: and a notice, so whoever reviews hears of it without reading verdicts.
    ledger.notice("post-review-overdue", item.due, item.request_id, ids, item.due, reason)


def _review_ran_out(ledger: Ledger, item: Pending) -> None:
    ledger.pending.remove(item)
    ledger.deny(item.request_id, resource_ids(item.resources), PENDING_EXPIRED,
                f"request {item.request_id} was not reviewed by "
                f"{format_time(item.pending_until)}",
                at=item.pending_until,
                key=f"pending:{item.request_id}:{format_time(item.pending_until)}")


def _subject_lock_ran_out(ledger: Ledger) -> None:
    until = ledger.locked_until
    if until is None:  # only scheduled for a set lock
        return
    ledger.locked_until = None
    ledger.emit("unlock", LOCK_EXPIRED, f"subject lock ended at {format_time(until)}",
                at=until, key=f"unlock:subject:{format_time(until)}")


def _request_lock_ran_out(ledger: Ledger, lock: RequestLock) -> None:
    ledger.request_locks.remove(lock)
    ledger.emit("unlock", LOCK_EXPIRED,
                f"lock on request {lock.request_id} ended at {format_time(lock.until)}",
                at=lock.until, request_id=lock.request_id, targets=(lock.request_id,),
                key=f"unlock:{lock.request_id}:{format_time(lock.until)}")


def _session_hold_ran_out(ledger: Ledger, session: Session) -> None:
    """A session waited for its grant; the grant is live now, or the subject is locked."""
    index = ledger.sessions.index(session)
    at = session.held_until
    if at is None:
        return
    if ledger.covering(session.request_id, session.resource,
                       by=session.started_at) is not None:
        ledger.sessions[index] = replace(session, held_until=None)
        return
    del ledger.sessions[index]
    ledger.lock_subject(at + timedelta(seconds=ledger.lock_s), SESSION_WITHOUT_GRANT,
                        f"session {session.session_id} used request {session.request_id}, "
                        f"which had no live grant of this subject for {session.resource} "
                        f"by {format_time(at)}", session.request_id, at=at,
                        key=f"session:{session.session_id}:{format_time(at)}")
