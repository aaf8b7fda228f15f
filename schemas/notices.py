"""Notices as published on ``jit.notices`` (issue J, wire contract ``jit.notice/v1``).

A notice tells people something is coming (a grant about to expire, a break-glass
post-review owed or overdue); it is never a verdict and never goes to the decisions topic,
so revocation workers need not know it.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field

from schemas._base import Model, UtcDatetime
from schemas.decisions import Cause, DecisionSubject, PolicyRef

__all__ = ["NOTICE_SCHEMA", "Notice", "NoticeKind"]

NOTICE_SCHEMA: Final = "jit.notice/v1"

NoticeKind = Literal["expiry-soon", "post-review-due", "post-review-overdue"]
"""``expiry-soon``: a grant expires at ``due_at`` (``notices.before_expiry_s`` before it);
``post-review-due``: a break-glass grant was made and its post-review is owed by
``due_at``; ``post-review-overdue``: that post-review was not done by ``due_at``."""


class Notice(Model):
    """One notice, as people's tooling (chat, mail, ticketing) reads it."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    schema_: Literal["jit.notice/v1"] = Field(default=NOTICE_SCHEMA, alias="schema")
    notice_id: str
    """Derived from the content (all but ``emitted_at`` and ``cause``): the same on
    redelivery and in a replay."""
    kind: NoticeKind
    at: UtcDatetime
    """When the notice fell due (event time), not when it was sent."""
    emitted_at: UtcDatetime
    tenant: str
    subject: DecisionSubject
    """Who holds the grant, with its ``owner`` (the team to tell for a workload or agent)."""
    request_id: str
    resources: tuple[str, ...]
    due_at: UtcDatetime
    """The grant's expiry (``expiry-soon``) or the post-review's due time."""
    reason: str
    policy: PolicyRef
    cause: Cause
