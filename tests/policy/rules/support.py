"""Helpers of the rule tests: raw events through decide() against a small policy."""

from __future__ import annotations

from typing import Any

from policy import Verdict, decide
from schemas.policy import Policy, parse_policy
from schemas.state import SubjectState
from tests.factories import event, raw_event, raw_request
from tests.keys import policy_keys_toml, signed

BASE = 'version = "t"\n'


def policy(text: str = "") -> Policy:
    return parse_policy(BASE + text).policy


def run(raws: list[dict[str, Any]], active: Policy) -> tuple[SubjectState, list[Verdict]]:
    state, verdicts = SubjectState(), []
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


def review(request_id: str, reviewer: str, outcome: str = "approved", t: float = 1,
           subject: str = "alice") -> dict[str, Any]:
    # Signed with the reviewer's test key (tests/keys.py): approvals count only signed.
    return signed(raw_event("request.reviewed", event_id=f"rev-{request_id}-{reviewer}-{t}",
                            t=t, subject=subject, request_id=request_id,
                            reviewer={"id": reviewer}, outcome=outcome))


REVIEWED = ('[defaults.step_up]\nfrom_sensitivity = "high"\npending_ttl_s = 600\n'
            '[[defaults.step_up.reviewers]]\nenvs = ["prod"]\nids = ["carol"]\n'
            + policy_keys_toml("defaults.step_up", ["carol", "alice", "dave"]))
