"""Helpers of the rule tests: raw events through decide() against a small policy."""

from __future__ import annotations

from typing import Any

from policy import Verdict, decide
from schemas.policy import Policy, parse_policy
from schemas.state import SubjectState
from tests.factories import event, raw_event, raw_request
from tests.keys import operator_keys_toml, policy_keys_toml, signed, signed_release

BASE = 'version = "t"\n'


def policy(text: str = "") -> Policy:
    return parse_policy(BASE + text).policy


def run(raws: list[dict[str, Any]], active: Policy, state: SubjectState | None = None,
        ) -> tuple[SubjectState, list[Verdict]]:
    state, verdicts = state or SubjectState(), []
    for raw in raws:
        item = event(raw)
        state, made = decide(state, item, item.at, active)
        verdicts.extend(made)
    return state, verdicts


def brief(verdicts: list[Verdict]) -> list[tuple[str, str, str | None]]:
    return [(v.action, v.rule.id, v.request_id) for v in verdicts]


def req(request_id: str, *resources: tuple[str, str, str], t: float = 0,
        **extra: Any) -> dict[str, Any]:
    listed = [{"id": rid, "env": env, "sensitivity": level} for rid, env, level in resources]
    return raw_request(request_id, listed, t=t, **extra)


NOTHING = "0" * 64
"""The digest a review of no known request signs (it is refused before its signature)."""


def review(request_id: str, reviewer: str, outcome: str = "approved", t: float = 1,
           subject: str = "alice", *, of: dict[str, Any] | None = None) -> dict[str, Any]:
    """A review signed with the reviewer's test key (tests/keys.py) over ``of``, the raw
    request.created it decides: reviews count only signed, over the request."""
    return signed(raw_event("request.reviewed", event_id=f"rev-{request_id}-{reviewer}-{t}",
                            t=t, subject=subject, request_id=request_id,
                            reviewer={"id": reviewer}, outcome=outcome),
                  request=NOTHING if of is None else of)


def release(target: dict[str, str], t: float, operator: str = "ops",
            subject: str = "alice") -> dict[str, Any]:
    """A lock.released signed by ``operator``'s test key (OPERATORS lists ops)."""
    return signed_release(raw_event("lock.released", event_id=f"rel-{operator}-{t}", t=t,
                                    subject=subject, target=target, by=operator))


REVIEWED = ('[defaults.step_up]\nfrom_sensitivity = "high"\npending_ttl_s = 600\n'
            '[[defaults.step_up.reviewers]]\nenvs = ["prod"]\nids = ["carol"]\n'
            + policy_keys_toml("defaults.step_up", ["carol", "alice", "dave"]))
OPERATORS = operator_keys_toml("defaults", ["ops", "alice"])
"""Operators who may release locks: ops, and alice (who is also the tests' subject)."""
