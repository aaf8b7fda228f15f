"""The ``jit.policy-load/v1`` record a worker writes to the decisions topic (issue F).

One model for the three places that build or read it: the worker's policy control writes it,
the audit query shows it, ``whoami`` reads the newest per worker. It has no ``action``, so a
consumer that acts on verdicts tells it apart by ``schema`` and skips it.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field

from schemas._base import Model, UtcDatetime
from schemas.decisions import Cause

__all__ = ["POLICY_LOAD_SCHEMA", "PolicyLoadRecord", "PolicySummary", "is_policy_load"]

POLICY_LOAD_SCHEMA: Final = "jit.policy-load/v1"


class PolicySummary(Model):
    """A policy as a load record names it; a refused file has only ``sha256`` and ``source``."""

    version: str | None = None
    sha256: str | None = None
    signer: str | None = None
    key_id: str | None = None
    source: str | None = None


class LoaderSubject(Model):
    """The worker's app id, as the subject consumers key decisions on."""

    id: str
    kind: Literal["workload"] = "workload"


class PolicyLoadRecord(Model):
    """One load or refused load of a policy by one worker."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["jit.policy-load/v1"] = Field(default=POLICY_LOAD_SCHEMA, alias="schema")
    decision_id: str
    outcome: Literal["loaded", "refused"]
    at: UtcDatetime
    emitted_at: UtcDatetime
    subject: LoaderSubject
    worker: str
    old: PolicySummary | None
    new: PolicySummary
    reason: str | None
    cause: Cause
    rollback: bool = False
    """A loaded policy an operator signed as a rollback (its version is not greater than the
    one it replaced). Added by issue H (finding 10); records from before lack it."""


def is_policy_load(record: object) -> bool:
    """Whether a decoded decisions-topic value is a policy-load record (not a verdict)."""
    return isinstance(record, dict) and record.get("schema") == POLICY_LOAD_SCHEMA
