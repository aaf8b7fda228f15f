"""The subject's state being changed by one event, and the verdicts that record each change.

Every state change the core makes goes through :class:`Ledger`, which emits the verdict
for it with the holdings before and after; the handlers decide, the ledger records.
"""

from __future__ import annotations

import hashlib
from bisect import insort
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from policy.notices import NoticeDraft
from policy.rules.base import Rule
from policy.rules.bounds import STATE_LIMIT
from policy.verdicts import Verdict, summarize
from schemas._base import format_time
from schemas.decisions import Action, StateSummary
from schemas.events import ClockTick, InputEvent, RequestCreated, Resource
from schemas.notices import NoticeKind
from schemas.state import Grant, Mark, Obligation, Pending, RequestLock, SubjectState

__all__ = ["ENDED_GRANT_MEMORY", "SIGNED_MEMORY", "Ledger", "ended_mark", "id_mark", "resource_ids"]

ENDED_GRANT_MEMORY = 64
"""How many ended grants a subject's state remembers (``SubjectState.ended``), newest kept.

A session on a remembered one locks the subject at once. Past the bound the oldest is
forgotten, and a session on it is treated as one on a grant not seen yet: it waits
``sessions.grace_s`` and then locks, unless a grant of that id (a new approval under the
policy) covers it by then. So forgetting delays a lock by at most the grace and never
opens more than a fresh request id would; it never cancels one. 64 marks take about 1.2 KB
of a stored value; the rate baseline makes 64 ended grants a matter of hours.
"""


SIGNED_MEMORY = 64
"""How many signed events (verified reviews and releases) a subject remembers at once
(``SubjectState.signed``). Each is kept only ``time.max_skew_s`` (plus a second) past its
signed ``at``, and only operators and reviewers can make one, so 64 within minutes is not
expected; one more is denied (state-limit) rather than forgetting a mark early."""


def id_mark(value: str) -> str:
    """The fixed-size mark of an id kept in state: the first 16 hex characters of the
    SHA-256 of its UTF-8 bytes (ids may be 128 characters). Two ids sharing a mark (one in
    2^32 among 2^16 ids) would only refuse the second as if it were the first."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def ended_mark(request_id: str) -> str:
    """The mark of an ended grant kept in ``SubjectState.ended`` (:func:`id_mark` of its
    request id). Two ids sharing a mark would only lock a session at once instead of after
    its grace."""
    return id_mark(request_id)


def resource_ids(resources: Iterable[Resource]) -> tuple[str, ...]:
    """The ids of ``resources``, in order, as verdicts list them."""
    return tuple([resource.id for resource in resources])


class Ledger:
    """The subject's state being changed by one event, and the verdicts that record it."""

    # One per event: slots spare the instance dictionary its set-up would fill.
    __slots__ = ("_count", "_event", "_marked", "_summary", "ended", "event_time", "grants",
                 "kind", "lock_s", "locked_until", "notice_before", "notices", "now",
                 "obligations", "owner", "pending", "request_locks", "requested", "sessions",
                 "signed", "state", "verdicts")

    def __init__(self, state: SubjectState, event: InputEvent | ClockTick,
                 now: datetime | None = None, *, event_time: datetime | None = None
                 ) -> None:
        self.now = event.at if now is None else now
        """The trusted time the event is decided at (policy.rules.time); ``event.at`` is
        only its producer's claim."""
        self.event_time = self.now if event_time is None else event_time
        """The event's own trusted time (its broker time): ``now`` unless the subject's
        clock was already later. What a session did is judged as of it: a grant made
        after it never covers it (:meth:`covering`'s ``by``)."""
        self.grants = list(state.grants)
        self.pending = list(state.pending)
        self.request_locks = list(state.request_locks)
        self.sessions = list(state.sessions)
        self.ended = list(state.ended)
        self.requested = list(state.requested)
        self.signed = list(state.signed)
        self.obligations = list(state.obligations)
        self.locked_until = state.locked_until
        self.state = state
        # A request states who asks; other events (reviews, sessions) may name the subject
        # by id only, so they do not overwrite what the request said.
        self.lock_s = 3600  # set from the tenant's policy before any rule runs
        self.notice_before: tuple[int, ...] = ()
        """The tenant's ``notices.before_expiry_s`` (set with ``lock_s``): which expiry
        notice follows one just sent."""
        self.notices: list[NoticeDraft] = []
        # Once a request fixed the kind (SubjectState.kind_fixed), no claim changes it.
        claims = isinstance(event, RequestCreated)
        self.kind = event.subject.kind if claims and not state.kind_fixed else state.kind
        self.owner = event.subject.owner if claims else state.owner
        self.verdicts: list[Verdict] = []
        self._marked: tuple[str | None, str] = (None, "")
        self._event = event
        self._count = 0
        # Grants change only through grant(), revoke() and lock_subject(), which drop it.
        self._summary: StateSummary | None = None

    def summary(self) -> StateSummary:
        """What the subject holds now (computed once per change of its grants)."""
        if self._summary is None:
            self._summary = summarize(self.grants)
        return self._summary

    def emit(
        self,
        action: Action,
        rule: Rule,
        reason: str,
        before: StateSummary | None = None,
        *,
        at: datetime | None = None,
        request_id: str | None = None,
        targets: tuple[str, ...] = (),
        resources: tuple[str, ...] = (),
        expires_at: datetime | None = None,
        key: str | None = None,
        post_review: bool = False,
    ) -> None:
        """Record a verdict; ``key`` defaults to the event's type and id and a running
        number (the type too: two events may share an id, and a decision names its cause's
        type, so the decision id must cover it)."""
        after = self.summary()
        if key is None:
            key = f"{self._event.type}:{self._event.event_id}#{self._count}"
            self._count += 1
        # Positional, in Verdict's field order: every verdict is built here.
        self.verdicts.append(Verdict(
            action, rule, reason, self.now if at is None else at, request_id, targets,
            resources, expires_at, after if before is None else before, after, key,
            post_review,
        ))

    def notice(self, kind: NoticeKind, at: datetime, request_id: str,
               resources: tuple[str, ...], due_at: datetime, reason: str) -> None:
        """Record a notice (issue J); its key names what it is about, its kind and time,
        never the event that found it due, so every shell gives it the same id."""
        self.notices.append(NoticeDraft(
            kind, at, request_id, resources, due_at, reason,
            f"notice:{kind}:{request_id}:{format_time(due_at)}:{format_time(at)}"))

    # ------------------------------------------------------------ reading

    def live(self, request_id: str) -> Grant | None:
        """The live grant of ``request_id``, if any."""
        for grant in self.grants:
            if grant.request_id == request_id:
                return grant
        return None

    def waiting(self, request_id: str) -> Pending | None:
        """The pending request ``request_id``, if it waits for review."""
        for item in self.pending:
            if item.request_id == request_id:
                return item
        return None

    def request_lock(self, request_id: str | None) -> RequestLock | None:
        """The lock on ``request_id``, if it is locked."""
        for lock in self.request_locks:
            if lock.request_id == request_id:
                return lock
        return None

    def has_ended(self, request_id: str) -> bool:
        """Whether a grant of ``request_id`` ended and is still remembered as ended."""
        return bool(self.ended) and ended_mark(request_id) in self.ended

    def remembers(self, request_id: str) -> bool:
        """Whether ``request_id`` was used by this subject and is still remembered."""
        if not self.requested:
            return False
        mark = self._mark(request_id)
        # One list and a C-level search, not any() resuming a generator per mark: every
        # request asks this.
        return mark in [item.mark for item in self.requested]

    def _mark(self, request_id: str) -> str:
        # A request's mark is asked for twice (is it remembered? remember it): hashed once.
        if self._marked[0] != request_id:
            self._marked = (request_id, id_mark(request_id))
        return self._marked[1]

    def covering(self, request_id: str | None, resource: str, *,
                 by: datetime | None = None) -> Grant | None:
        """A live grant covering ``resource`` (of ``request_id`` when given; granted at
        or before ``by`` when given)."""
        for grant in self.grants:
            if (request_id is None or grant.request_id == request_id) and (
                    by is None or grant.granted_at <= by) and any(
                    r.id == resource for r in grant.resources):
                return grant
        return None

    # ------------------------------------------------------------ changing

    def grant(self, grant: Grant, rule: Rule, reason: str) -> None:
        before = self.summary()
        self.grants.append(grant)
        self._summary = None
        self.emit("approve", rule, reason, before, request_id=grant.request_id,
                  resources=resource_ids(grant.resources), expires_at=grant.expires_at,
                  post_review=grant.post_review)

    def revoke(self, grant: Grant, rule: Rule, reason: str, *, at: datetime | None = None,
               key: str | None = None) -> None:
        before = self.summary()
        self.grants.remove(grant)
        self._ended((grant.request_id,))
        self._summary = None
        # Issue J: a break-glass grant's end says its post-review is still owed.
        self.emit("revoke", rule, reason, before, at=at, request_id=grant.request_id,
                  targets=(grant.request_id,), resources=resource_ids(grant.resources),
                  key=key, post_review=grant.post_review)

    def extend(self, grant: Grant, expires_at: datetime, notice_at: datetime | None,
               rule: Rule, reason: str) -> Grant:
        """Move a live grant's expiry to ``expires_at`` (issue J); the grant is never ended
        for it. Returns the grant as it is now."""
        longer = replace(grant, expires_at=expires_at, extensions=grant.extensions + 1,
                         notice_at=notice_at)
        self.grants[self.grants.index(grant)] = longer
        self._summary = None
        self.emit("approve", rule, reason, request_id=grant.request_id,
                  targets=(grant.request_id,), resources=resource_ids(grant.resources),
                  expires_at=expires_at)
        return longer

    def oblige(self, obligation: Obligation) -> None:
        """Open a break-glass post-review (issue J), kept after the grant ends."""
        self.obligations.append(obligation)

    def deny(self, request_id: str | None, resources: tuple[str, ...], rule: Rule,
             reason: str, *, at: datetime | None = None, key: str | None = None) -> None:
        self.emit("deny", rule, reason, at=at, request_id=request_id, resources=resources,
                  key=key)

    def lock_request(self, request_id: str, resources: tuple[str, ...], until: datetime,
                     rule: Rule, reason: str) -> None:
        """Freeze one request: no review decides it and its id is refused until ``until``."""
        self.request_locks.append(RequestLock(request_id, until))
        self.emit("lock", rule, reason, request_id=request_id, targets=(request_id,),
                  resources=resources, expires_at=until)

    def lock_subject(self, until: datetime, rule: Rule, reason: str,
                     request_id: str | None, *, at: datetime | None = None,
                     key: str | None = None) -> None:
        """Freeze the subject: its live grants end with the lock (listed as targets)."""
        before = self.summary()
        ended = tuple(grant.request_id for grant in self.grants)
        self.grants.clear()
        self._ended(ended)
        self._summary = None
        if self.locked_until is None or self.locked_until < until:
            self.locked_until = until
        self.emit("lock", rule, reason, before, at=at, request_id=request_id, targets=ended,
                  expires_at=self.locked_until, key=key)

    def remember_request(self, request_id: str, until: datetime) -> None:
        """Remember that the subject used ``request_id``, until ``until`` (kept in expiry
        order, so :func:`policy.deadlines.expire` looks at the head only)."""
        _keep(self.requested, Mark(self._mark(request_id), until))

    def remember_signed(self, event: InputEvent, skew_s: int, request_id: str | None,
                        resources: tuple[str, ...]) -> bool:
        """Remember a signed event (review, release) whose signature verified, until its
        signed ``at`` plus ``skew_s`` (and a second): a replay of it is dropped meanwhile
        (policy.decide), and the clock-skew check refuses it after. Returns False, having
        denied it (state-limit), when :data:`SIGNED_MEMORY` marks are kept already: the
        event then takes no effect rather than being forgotten early."""
        if len(self.signed) >= SIGNED_MEMORY:
            self.deny(request_id, resources, STATE_LIMIT,
                      f"subject remembers {len(self.signed)} signed events, limit is "
                      f"{SIGNED_MEMORY}; this one takes no effect, send it again after "
                      f"{format_time(self.signed[0].until)}")
            return False
        until = event.at + timedelta(seconds=skew_s + 1)
        _keep(self.signed, Mark(id_mark(event.event_id), until))
        return True

    def _ended(self, request_ids: tuple[str, ...]) -> None:
        if not request_ids:
            return
        self.ended += [ended_mark(request_id) for request_id in request_ids]
        del self.ended[:-ENDED_GRANT_MEMORY]


def _until(mark: Mark) -> datetime:
    return mark.until


def _keep(marks: list[Mark], mark: Mark) -> None:
    """Add ``mark`` in expiry order (usually last: a retention is one length per tenant)."""
    if not marks or marks[-1].until <= mark.until:
        marks.append(mark)
    else:
        insort(marks, mark, key=_until)
