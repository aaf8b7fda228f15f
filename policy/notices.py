"""Notices (issue J): what the core says is coming, as data, beside its verdicts.

A notice is no verdict: it changes nothing anyone enforces, and the shells publish it on
``jit.notices``, never on the decisions topic. Like a verdict it carries a ``key`` naming
what it is about (not the event that noticed it), so its ``notice_id`` is the same whether
a tick, a later event or a replay finds it due.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from schemas._base import trusted_model
from schemas.decisions import Cause, DecisionSubject, PolicyRef
from schemas.notices import NOTICE_SCHEMA, Notice, NoticeKind

__all__ = ["NoticeDraft", "next_notice_at", "notice_id", "to_notices"]

_NOTICE_SET = frozenset(Notice.model_fields) - {"schema_"}


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    """One notice of the core, before the shell adds its id, cause and policy reference."""

    kind: NoticeKind
    at: datetime
    request_id: str
    resources: tuple[str, ...]
    due_at: datetime
    reason: str
    key: str
    """Unique per (tenant, subject) and stable: what the notice is about and when."""


def next_notice_at(expires_at: datetime, before_expiry_s: tuple[int, ...], after: datetime
                   ) -> datetime | None:
    """When the next expiry notice of a grant expiring at ``expires_at`` is due: the
    earliest of ``expires_at`` less each ``before_expiry_s`` that is after ``after``, if
    any (``notices.before_expiry_s``: each moment before expiry gets one notice)."""
    if len(before_expiry_s) == 1:  # the packaged policy's one notice: no lists to build
        moment = expires_at - timedelta(seconds=before_expiry_s[0])
        return moment if moment > after else None
    moments = [expires_at - timedelta(seconds=before) for before in before_expiry_s]
    return min([moment for moment in moments if moment > after], default=None)


def notice_id(tenant: str, subject: DecisionSubject, draft: NoticeDraft,
              policy: PolicyRef) -> str:
    """The id of a notice, from its content: everything it says but ``emitted_at`` and
    its ``cause`` (which tick or event found it due). ``n-`` and 32 hex of a SHA-256."""
    digest = hashlib.sha256(orjson.dumps((
        tenant, subject.id, subject.kind, subject.owner, policy.version, policy.sha256,
        draft.key, draft.kind, draft.at, draft.request_id, draft.resources, draft.due_at,
        draft.reason)))
    return "n-" + digest.hexdigest()[:32]


def to_notices(drafts: tuple[NoticeDraft, ...], tenant: str, subject: DecisionSubject,
               policy: PolicyRef, cause: Cause, emitted_at: datetime | None
               ) -> tuple[Notice, ...]:
    """Wrap drafts for ``jit.notices``; ``emitted_at`` None (a replay) uses each one's
    ``at``, so replays are byte-identical."""
    return tuple(
        trusted_model(Notice, {
            "schema_": NOTICE_SCHEMA,
            "notice_id": notice_id(tenant, subject, draft, policy),
            "kind": draft.kind,
            "at": draft.at,
            "emitted_at": draft.at if emitted_at is None else emitted_at,
            "tenant": tenant,
            "subject": subject,
            "request_id": draft.request_id,
            "resources": draft.resources,
            "due_at": draft.due_at,
            "reason": draft.reason,
            "policy": policy,
            "cause": cause,
        }, set(_NOTICE_SET))
        for draft in drafts
    )
