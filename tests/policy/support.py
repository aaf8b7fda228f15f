"""Helpers of the core tests: run events through decide() checking every summary."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

from policy import RULES, Verdict, decide, summarize
from schemas.decisions import StateSummary
from schemas.events import InputEvent
from schemas.policy import Policy, parse_policy
from schemas.state import SubjectState
from tests.factories import request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text()).policy
CAP = POLICY.defaults.caps.max_active_resources
RULE_ORDER = [rule.id for rule in RULES]


def summary(grants: int, resources_: int, *envs: str) -> StateSummary:
    return StateSummary(active_grants=grants, active_resources=resources_, envs=envs)


def run(events: Iterable[InputEvent], policy: Policy = POLICY,
        state: SubjectState | None = None) -> tuple[SubjectState, list[Verdict]]:
    """Apply events in order, each at its own time, checking every verdict's summaries."""
    state = state or SubjectState()
    verdicts: list[Verdict] = []
    for item in events:
        new_state, made = decide(state, item, item.at, policy)
        assert_summaries(state, made, new_state)
        state = new_state
        verdicts.extend(made)
    return state, verdicts


def assert_summaries(old: SubjectState, verdicts: Iterable[Verdict],
                     new: SubjectState) -> None:
    """Each verdict's before/after chain from the old state's holdings to the new state's."""
    current = summarize(old.grants)
    for verdict in verdicts:
        assert verdict.before == current, verdict
        delta = verdict.after.active_grants - verdict.before.active_grants
        assert delta == {"approve": 1, "revoke": -1}.get(verdict.action, delta)
        if verdict.action in ("deny", "escalate"):
            assert verdict.after == verdict.before
        for summary in (verdict.before, verdict.after):
            assert list(summary.envs) == sorted(set(summary.envs))
        current = verdict.after
    assert current == summarize(new.grants)


def brief(verdicts: Iterable[Verdict]) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    return [(v.action, v.rule.id, v.request_id, v.targets) for v in verdicts]


def live(state: SubjectState) -> list[str]:
    return [grant.request_id for grant in state.grants]


def held(state: SubjectState) -> set[str]:
    return {resource.id for grant in state.grants for resource in grant.resources}


def singles(count: int, env: str = "prod", start: int = 0) -> list[InputEvent]:
    """``count`` one-resource requests r-0, r-1, … one second apart."""
    return [request(f"r-{n}", [(f"x{n}", env)], t=n) for n in range(start, start + count)]
