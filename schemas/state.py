"""What the watcher remembers per subject (the value of the grant table).

``Grant`` and ``SubjectState`` are plain frozen dataclasses: the core builds them on every
event, where pydantic's validation would cost more than the decision itself. They are
validated when a stored value is read back, as fields of the pydantic ``StoredSubject``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from schemas._base import Model, UtcDatetime
from schemas.events import Resource

__all__ = ["STORED_STATE_VERSION", "Grant", "StoredSubject", "SubjectState"]

STORED_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Grant:
    """Access the watcher approved and has not yet ended."""

    request_id: str
    resources: tuple[Resource, ...]
    granted_at: UtcDatetime
    expires_at: UtcDatetime


@dataclass(frozen=True, slots=True)
class SubjectState:
    """One subject's state within one tenant.

    ``applied`` holds the ids of the most recent events already applied, oldest first, so a
    redelivered event changes nothing (at-least-once delivery redelivers only what was not
    yet committed, so a bounded window suffices).
    """

    grants: tuple[Grant, ...] = ()
    applied: tuple[str, ...] = ()


class StoredSubject(Model):
    """The table value for one subject key: its state per tenant, never mixed."""

    v: int = STORED_STATE_VERSION
    tenants: dict[str, SubjectState] = Field(default_factory=dict)


