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

__all__ = ["STORED_STATE_VERSION", "Grant", "Pending", "RequestLock", "Session",
           "StoredSubject", "SubjectState"]

STORED_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Grant:
    """Access the watcher approved and has not yet ended."""

    request_id: str
    resources: tuple[Resource, ...]
    granted_at: UtcDatetime
    expires_at: UtcDatetime


    post_review: bool = False
    """Granted by break-glass: a human must review it afterwards."""


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


@dataclass(frozen=True, slots=True)
class RequestLock:
    """One request frozen until ``until`` (or an explicit release)."""

    request_id: str
    until: UtcDatetime


@dataclass(frozen=True, slots=True)
class Session:
    """A session the subject opened on a grant.

    ``held_until`` is set while the grant it names is not (yet) live: requests and sessions
    are separate topics, so a session may overtake the approval it relies on. If no live
    grant covers it by then, the subject is locked.
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
    ``env/sensitivity`` pairs a workload has been granted before.
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


class StoredSubject(Model):
    """The table value for one subject key: its state per tenant, never mixed."""

    v: int = STORED_STATE_VERSION
    tenants: dict[str, SubjectState] = Field(default_factory=dict)


