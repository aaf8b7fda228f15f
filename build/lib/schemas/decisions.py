"""Verdicts as published on ``jit.decisions`` (wire contract v1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pydantic import ConfigDict, Field

from schemas._base import Model, UtcDatetime
from schemas.events import SubjectKind

__all__ = [
    "DECISION_SCHEMA",
    "Action",
    "Cause",
    "Decision",
    "DecisionSubject",
    "PolicyRef",
    "RuleRef",
    "StateChange",
    "StateSummary",
]

DECISION_SCHEMA: Final = "jit.decision/v1"

Action = Literal["approve", "deny", "escalate", "revoke", "lock", "unlock"]


class DecisionSubject(Model):
    """The subject a verdict is about."""

    id: str
    kind: SubjectKind
    owner: str | None = None


class RuleRef(Model):
    """The rule that fired: a stable id and a sentence saying what it enforces."""

    id: str
    description: str


class PolicyRef(Model):
    """The exact policy a verdict was made under."""

    version: str
    sha256: str


@dataclass(frozen=True, slots=True)
class StateSummary:
    """What the subject held at one moment: live grants, distinct resources, environments.

    A plain dataclass: the core makes two per verdict.
    """

    active_grants: int
    active_resources: int
    envs: tuple[str, ...]


class StateChange(Model):
    """The subject's holdings just before and just after the verdict."""

    before: StateSummary
    after: StateSummary


class Cause(Model):
    """The input that led to the verdict; Kafka coordinates are null in a file replay."""

    event_id: str
    type: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class Decision(Model):
    """One verdict, as revocation workers and SIEMs read it."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    schema_: Literal["jit.decision/v1"] = Field(default=DECISION_SCHEMA, alias="schema")
    decision_id: str
    action: Action
    at: UtcDatetime
    emitted_at: UtcDatetime
    tenant: str
    subject: DecisionSubject
    request_id: str | None
    targets: tuple[str, ...]
    resources: tuple[str, ...]
    expires_at: UtcDatetime | None
    rule: RuleRef
    reason: str
    policy: PolicyRef
    state: StateChange
    cause: Cause
    post_review: bool = False
    """jitwatch addition: the grant was made by break-glass and must be reviewed afterwards."""
