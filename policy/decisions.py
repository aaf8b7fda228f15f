"""Turn core verdicts into contract decisions: deterministic ids, cause and policy pinned."""

from __future__ import annotations

import hashlib
from datetime import datetime

from policy.core import Verdict
from schemas.decisions import Cause, Decision, DecisionSubject, PolicyRef, RuleRef, StateChange
from schemas.events import ClockTick, InputEvent

__all__ = ["decision_id", "to_decisions"]


def decision_id(tenant: str, subject_id: str, verdict: Verdict) -> str:
    """Derive the id from what the verdict is about, so every replay gives the same id."""
    material = "\x1f".join(
        (tenant, subject_id, verdict.key, verdict.action, verdict.rule.id, *verdict.targets)
    )
    return "d-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def to_decisions(
    verdicts: tuple[Verdict, ...],
    event: InputEvent | ClockTick,
    policy: PolicyRef,
    cause: Cause,
    emitted_at: datetime | None,
    subject: DecisionSubject | None = None,
) -> tuple[Decision, ...]:
    """Wrap verdicts for the decisions topic.

    ``emitted_at`` is the wall clock in the stream; ``None`` (a file replay) uses each
    verdict's own ``at`` so that replays are byte-identical. ``subject`` is who the
    verdicts are about as the state knows them (default: as the event names them).
    """
    if subject is None:
        subject = DecisionSubject(
            id=event.subject.id, kind=event.subject.kind, owner=event.subject.owner
        )
    # model_construct: every field comes typed from the core, so validating it again would
    # only cost time (a third of a step); the golden replays pin the wire bytes.
    return tuple(
        Decision.model_construct(
            decision_id=decision_id(event.tenant, event.subject.id, verdict),
            action=verdict.action,
            at=verdict.at,
            emitted_at=verdict.at if emitted_at is None else emitted_at,
            tenant=event.tenant,
            subject=subject,
            request_id=verdict.request_id,
            targets=verdict.targets,
            resources=verdict.resources,
            expires_at=verdict.expires_at,
            rule=RuleRef.model_construct(id=verdict.rule.id, description=verdict.rule.description),
            reason=verdict.reason,
            policy=policy,
            state=StateChange.model_construct(before=verdict.before, after=verdict.after),
            cause=cause,
            post_review=verdict.post_review,
        )
        for verdict in verdicts
    )
