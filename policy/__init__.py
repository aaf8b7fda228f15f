"""The pure core of jitwatch: policy evaluation with no clock, I/O or environment.

``decide`` is the oracle: the stream and the file replay both run it through ``step`` and
must give the same decisions for the same input and policy.

Code outside ``policy/`` imports only the names below, and only from here (plus
``policy.lint`` and ``policy.signatures``); the modules behind them may move. Layers, each
using only those above it::

    rules/       every Rule, the checks of a new request, combine() (deny > escalate > approve)
    identities   canonical ids: how authority compares who someone is
    signed       signed events' canonical bytes and the one signature check; reviews and
                 releases define what each signs
    verdicts     Verdict, summarize: what the core returns
    notices      NoticeDraft: what is coming (issue J), beside verdicts, for jit.notices
    ledger       state changes, each recorded as a verdict
    deadlines    next_deadline, and what ends when time runs out
    handlers/    one module per kind of event
    decide       decide(): redelivery, unknown tenant, dispatch, failing closed
    decisions    verdicts to contract decisions (deterministic ids)
    steps        step/tick: one event against a stored subject, as both shells run it
"""

from policy.deadlines import next_deadline
from policy.decide import APPLIED_EVENT_MEMORY, Decided, decide, decide_all
from policy.decisions import decision_id, encode_decisions, to_decisions
from policy.identities import canonical_id, same_identity
from policy.ledger import ENDED_GRANT_MEMORY, ended_mark
from policy.notices import NoticeDraft, notice_id, to_notices
from policy.releases import release_message, release_problem, sign_release
from policy.reviews import request_digest, review_message, review_signature_problem, sign_review
from policy.rules import RULES, Finding, Rule, combine
from policy.steps import Step, refuse, step, tick, vacant
from policy.verdicts import Verdict, summarize

__all__ = [
    "APPLIED_EVENT_MEMORY",
    "ENDED_GRANT_MEMORY",
    "RULES",
    "Decided",
    "Finding",
    "NoticeDraft",
    "Rule",
    "Step",
    "Verdict",
    "canonical_id",
    "combine",
    "decide",
    "decide_all",
    "decision_id",
    "encode_decisions",
    "ended_mark",
    "next_deadline",
    "notice_id",
    "refuse",
    "release_message",
    "release_problem",
    "request_digest",
    "review_message",
    "review_signature_problem",
    "same_identity",
    "sign_release",
    "sign_review",
    "step",
    "summarize",
    "tick",
    "to_decisions",
    "to_notices",
    "vacant",
]
