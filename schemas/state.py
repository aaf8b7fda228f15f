"""What the watcher remembers per subject (the value of the grant table).

``Grant`` and ``SubjectState`` are plain frozen dataclasses: the core builds them on every
event, where pydantic's validation would cost more than the decision itself. They are
validated when a stored value is read back, as fields of the pydantic ``StoredSubject``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from schemas._base import Model, UtcDatetime
from schemas.events import Resource, SubjectKind

__all__ = ["MAX_STORED_BYTES", "STORED_RECORD_HEADROOM", "STORED_STATE_VERSION", "Grant", "Mark",
           "Obligation", "Pending", "RequestLock", "Session", "StoredSubject", "SubjectState"]

STORED_STATE_VERSION = 1

MAX_STORED_BYTES = 1_000_000
"""Default largest encoded stored value (``JITWATCH_MAX_STORED_BYTES``): the broker's
default ``message.max.bytes`` (1,048,588) less 48,588 bytes of headroom for the key (a
subject id, at most 2,048 bytes of UTF-8), the record and batch overhead; it also stays
under aiokafka's default ``max_request_size`` (1,048,576), which the worker's producer is
given (faust's own default, 1,000,000, would refuse a value at the limit with its key)."""

STORED_RECORD_HEADROOM = 48_576
"""Bytes a changelog record takes beyond its stored value: the key (a canonical subject id;
512 characters NFKC can lengthen to 16,896 bytes of UTF-8) and the record's framing, with
room to spare. The worker's producer takes records up to the stored limit plus this."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Access the watcher approved and has not yet ended."""

    request_id: str
    resources: tuple[Resource, ...]
    granted_at: UtcDatetime
    expires_at: UtcDatetime


    post_review: bool = False
    """Granted by break-glass: a human must review it afterwards."""
    extensions: int = 0
    """Issue J: how many extensions moved ``expires_at`` (``ttl.max_extensions``)."""
    notice_at: UtcDatetime | None = None
    """Issue J: when the next expiry notice (``notices.before_expiry_s``) is due; None when
    none is left to send (and in values stored before issue J)."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A request escalated to a human, waiting until ``pending_until``."""

    request_id: str
    resources: tuple[Resource, ...]
    requested_at: UtcDatetime
    pending_until: UtcDatetime
    ttl_s: int
    """The lifetime the grant gets if approved (already clamped)."""
    requested_ttl_s: int | None = None
    """What the request asked for, so an approval can say it was clamped."""
    request_digest: str | None = None
    """The ``request.created``'s digest (policy.reviews.request_digest) a review's signature
    must cover. None in values stored before issue H: no review can decide such a request
    (it ends when its pending time runs out), since no signature binds what it asked."""
    needed: int = 1
    """Issue J: how many distinct reviewers must approve (``step_up.approvals``)."""
    approvals: tuple[str, ...] = ()
    """Issue J: canonical ids of the reviewers who approved so far, in order."""
    extends: bool = False
    """Issue J: an extension of the live grant of ``request_id``; ``ttl_s`` is the time it
    adds to that grant's expiry."""


@dataclass(frozen=True, slots=True)
class Obligation:
    """Issue J: a break-glass grant's post-review, kept after the grant ends until a signed
    review by an allowed reviewer (not the subject) closes it."""

    request_id: str
    resources: tuple[Resource, ...]
    granted_at: UtcDatetime
    due: UtcDatetime
    request_digest: str
    """What a post-review's signature must cover (policy.reviews.request_digest)."""
    deadline: UtcDatetime | None = None
    """``due`` until it passes (a deadline of the subject), None once it is overdue."""


@dataclass(frozen=True, slots=True)
class RequestLock:
    """One request frozen until ``until`` (or an explicit release)."""

    request_id: str
    until: UtcDatetime


@dataclass(frozen=True, slots=True)
class Mark:
    """An id remembered until ``until``, kept as a fixed-size mark (policy.ledger.id_mark:
    16 hex of the SHA-256 of the id) so a long id costs no more than a short one."""

    mark: str
    until: UtcDatetime


@dataclass(frozen=True, slots=True)
class Session:
    """A session the subject opened on a grant.

    ``held_until`` is set while the grant it names has not been seen yet: requests and
    sessions are separate topics, so a session may overtake the approval it relies on. The
    hold ends when that grant arrives (it must cover ``resource`` and have been granted by
    ``started_at``, the session's own trusted time) or, at ``held_until``, with a lock. A
    held session is never forgotten before then (policy.handlers.sessions).
    """

    session_id: str
    request_id: str
    resource: str
    started_at: UtcDatetime
    held_until: UtcDatetime | None = None


@dataclass(frozen=True, slots=True)
class SubjectState:
    """One subject's state within one tenant.

    ``applied`` holds the ids of the most recent events already applied, oldest first, so a
    redelivered event changes nothing (at-least-once delivery redelivers only what was not
    yet committed, so a bounded window suffices). ``recent_requests`` and
    ``break_glass_uses`` keep only what their sliding windows still need; ``seen`` holds the
    ``env/sensitivity`` pairs a workload has been granted before; ``ended`` marks the most
    recent grants that ended (policy.ledger.ENDED_GRANT_MEMORY of them).
    """

    grants: tuple[Grant, ...] = ()
    applied: tuple[str, ...] = ()
    pending: tuple[Pending, ...] = ()
    locked_until: UtcDatetime | None = None
    request_locks: tuple[RequestLock, ...] = ()
    recent_requests: tuple[UtcDatetime, ...] = ()
    break_glass_uses: tuple[UtcDatetime, ...] = ()
    seen: tuple[str, ...] = ()
    sessions: tuple[Session, ...] = ()
    kind: SubjectKind = "human"
    owner: str | None = None
    """The subject's kind and owner as last seen, for verdicts made by a clock tick."""
    kind_fixed: bool = False
    """``kind`` is fixed: a request passed the identity checks with it, and a request
    claiming another kind is denied (rule ``identity-kind-changed``)."""
    clock: UtcDatetime | None = None
    """The trusted time of the subject's last decision on broker time (issue H): the next
    event is decided no earlier, so per subject time never runs backwards. None for states
    stored before, or only ever decided on event time (a replay line without
    ``broker_time``)."""
    ended: tuple[str, ...] = ()
    """Marks (policy.ledger.ended_mark: 16 hex of the SHA-256 of the request id) of this
    subject's grants that ended (revoked, completed, expired, withdrawn, ended by a lock),
    oldest first, at most policy.ledger.ENDED_GRANT_MEMORY: a session on one of them locks
    at once instead of waiting for a grant that will not come. Empty in values stored
    before issue H (finding 12), which still decode."""
    requested: tuple[Mark, ...] = ()
    """Marks of the request ids this subject used (each request that was granted or went
    pending), until ``limits.request_retention_s`` after it was decided, earliest expiry
    first: while its mark is kept, a ``request.created`` reusing the id is denied (rule
    request-id-remembered). At most ``limits.max_request_ids``; a request that would pass
    that is denied (state-limit), so no mark is forgotten before its time."""
    signed: tuple[Mark, ...] = ()
    """Marks of the event ids of signed events (reviews, releases) whose signature verified,
    until their signed ``at`` plus ``time.max_skew_s`` (after which the clock-skew check
    refuses the same bytes), earliest expiry first: a replay of one is dropped as a
    redelivery even after its id left ``applied``. At most policy.ledger.SIGNED_MEMORY."""
    forget_at: UtcDatetime | None = None
    """When the subject's history may be forgotten (issue H, bounds): its last applied
    event's time plus ``limits.request_retention_s``, or the rate or break-glass window when
    longer. A clock tick at or after it, with nothing live or remembered left (grants,
    pending requests, locks, sessions, request ids, signed events), drops the tenant's state,
    and with it its rate and break-glass history, seen pairs, fixed kind and ended-grant and
    redelivery marks: a subject quiet that long is a new subject again. With no tenant left
    the subject is deleted from the table. None in values stored before: set by their next
    event."""
    obligations: tuple[Obligation, ...] = ()
    """Issue J: open break-glass post-reviews, oldest first. An open one keeps the subject
    stored (it is never forgotten), overdue or not."""


class StoredSubject(Model):
    """The table value for one subject key: its state per tenant, never mixed."""

    v: int = STORED_STATE_VERSION
    tenants: dict[str, SubjectState] = Field(default_factory=dict)


