"""The pure core of jitwatch: policy evaluation with no clock, I/O or environment.

``decide`` is the oracle: the stream and the file replay both run it through ``step`` and
must give the same decisions for the same input and policy.
"""

from policy.core import APPLIED_EVENT_MEMORY, Verdict, decide, next_deadline, summarize
from policy.decisions import decision_id, to_decisions
from policy.engine import Step, step, tick
from policy.reviews import review_signature_problem, sign_review
from policy.rules import RULES, Rule

__all__ = [
    "APPLIED_EVENT_MEMORY",
    "RULES",
    "Rule",
    "Step",
    "Verdict",
    "decide",
    "decision_id",
    "next_deadline",
    "review_signature_problem",
    "sign_review",
    "step",
    "summarize",
    "tick",
    "to_decisions",
]
