"""Every rule the core can fire: a stable id and one sentence saying what it enforces."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AUTO_APPROVE",
    "EVALUATION_ERROR",
    "EXCLUSIVE_ENVIRONMENTS",
    "MAX_ACTIVE_RESOURCES",
    "REQUEST_ID_REUSED",
    "REQUEST_WITHDRAWN",
    "REVIEW_NOT_PENDING",
    "RULES",
    "TASK_COMPLETED",
    "TTL_EXPIRED",
    "Rule",
]


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's identity as auditors see it in every verdict it produces."""

    id: str
    description: str


MAX_ACTIVE_RESOURCES = Rule(
    "max-active-resources",
    "A subject holds at most the policy's number of distinct resources at once.",
)
EXCLUSIVE_ENVIRONMENTS = Rule(
    "exclusive-environments",
    "A subject never holds access to two mutually exclusive environments at the same time.",
)
AUTO_APPROVE = Rule(
    "auto-approve",
    "A request that no rule objects to is approved for its time to live.",
)
TTL_EXPIRED = Rule(
    "ttl-expired",
    "A grant ends when its time to live runs out.",
)
REQUEST_WITHDRAWN = Rule(
    "request-withdrawn",
    "A grant ends when the subject withdraws the request it was made for.",
)
TASK_COMPLETED = Rule(
    "task-completed",
    "A grant ends when the task it was made for is reported done.",
)
REQUEST_ID_REUSED = Rule(
    "request-id-reused",
    "A new request may not reuse the id of a grant that is still live.",
)
REVIEW_NOT_PENDING = Rule(
    "review-not-pending",
    "A review can only decide a request that is waiting for review.",
)
EVALUATION_ERROR = Rule(
    "evaluation-error",
    "When the policy cannot be evaluated for an event, the event is denied.",
)

RULES: tuple[Rule, ...] = (
    MAX_ACTIVE_RESOURCES,
    EXCLUSIVE_ENVIRONMENTS,
    AUTO_APPROVE,
    TTL_EXPIRED,
    REQUEST_WITHDRAWN,
    TASK_COMPLETED,
    REQUEST_ID_REUSED,
    REVIEW_NOT_PENDING,
    EVALUATION_ERROR,
)
"""All rules, in the order the core evaluates objections to a request (first wins the id)."""
