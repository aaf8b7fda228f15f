"""Pydantic models of jitwatch's wire contract, stored state and policy.

These models are the single source of truth; the JSON Schema files in ``schemas/json`` are
exported from them (``jitwatch schemas export``) and ship with the package.
"""

from schemas.decisions import DECISION_SCHEMA, Action, Cause, Decision, PolicyRef, RuleRef
from schemas.errors import ConfigError, InputError, JitwatchError, PolicyError
from schemas.events import INPUT_EVENT, InputEvent, RequestCreated, Resource, Subject
from schemas.policy import LoadedPolicy, Policy, parse_policy
from schemas.state import Grant, StoredSubject, SubjectState

__all__ = [
    "DECISION_SCHEMA",
    "INPUT_EVENT",
    "Action",
    "Cause",
    "ConfigError",
    "Decision",
    "Grant",
    "InputError",
    "InputEvent",
    "JitwatchError",
    "LoadedPolicy",
    "Policy",
    "PolicyError",
    "PolicyRef",
    "RequestCreated",
    "Resource",
    "RuleRef",
    "StoredSubject",
    "Subject",
    "SubjectState",
    "parse_policy",
]
