"""Turn core verdicts into contract decisions: deterministic ids, cause and policy pinned."""

from __future__ import annotations

import hashlib
from datetime import datetime

from policy.rules.base import Rule
from policy.verdicts import Verdict
from schemas._base import trusted_model
from schemas.decisions import (
    DECISION_SCHEMA,
    Cause,
    Decision,
    DecisionSubject,
    PolicyRef,
    RuleRef,
    StateChange,
)
from schemas.events import ClockTick, InputEvent

__all__ = ["decision_id", "to_decisions"]

_DECISION_SET = frozenset(Decision.model_fields) - {"schema_"}
"""The fields to_decisions passes: all but the constant schema, as model_construct saw it."""
_STATE_SET = frozenset(StateChange.model_fields)
_RULE_SET = frozenset(RuleRef.model_fields)
_RULE_REFS: dict[str, RuleRef] = {}
"""One immutable RuleRef per rule id: a rule's wire form never changes (policy/rules/)."""


def _rule_ref(rule: Rule) -> RuleRef:
    ref = _RULE_REFS.get(rule.id)
    if ref is None or ref.description != rule.description:
        ref = trusted_model(RuleRef, {"id": rule.id, "description": rule.description},
                            set(_RULE_SET))
        _RULE_REFS[rule.id] = ref
    return ref


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
    # Built unvalidated: every field comes typed from the core, so validating it again
    # would only cost time (a third of a step); the golden replays pin the wire bytes.
    tenant, subject_id = event.tenant, event.subject.id
    return tuple(
        trusted_model(Decision, {
            "schema_": DECISION_SCHEMA,
            "decision_id": decision_id(tenant, subject_id, verdict),
            "action": verdict.action,
            "at": verdict.at,
            "emitted_at": verdict.at if emitted_at is None else emitted_at,
            "tenant": tenant,
            "subject": subject,
            "request_id": verdict.request_id,
            "targets": verdict.targets,
            "resources": verdict.resources,
            "expires_at": verdict.expires_at,
            "rule": _rule_ref(verdict.rule),
            "reason": verdict.reason,
            "policy": policy,
            "state": trusted_model(StateChange, {"before": verdict.before, "after": verdict.after},
                              set(_STATE_SET)),
            "cause": cause,
            "post_review": verdict.post_review,
        }, set(_DECISION_SET))
        for verdict in verdicts
    )
