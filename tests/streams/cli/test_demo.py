"""The demo scenario (`jitwatch demo`, ops/demo) decides as its comments say."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson

from schemas.decisions import Decision
from schemas.notices import Notice
from schemas.policy import parse_policy
from streams.cli.demo import demo_phases
from streams.engine.replay import Replay, replay_lines
from tests.paths import REPO

DEMO_POLICY = REPO / "ops" / "demo-policy.toml"
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_each_phase_gives_the_decisions_the_demo_waits_for() -> None:
    policy = parse_policy(DEMO_POLICY.read_text(encoding="utf-8"), str(DEMO_POLICY))
    replay = Replay()
    rules: list[Counter[str]] = []
    for phase in demo_phases(NOW, run="t"):
        decided = list(replay_lines((orjson.dumps(event) for event in phase.events), policy,
                                    replay, 64 * 1024, notices=True))
        notices = [item for item in decided if isinstance(item, Notice)]
        assert len(decided) - len(notices) == phase.decisions
        assert len(notices) == phase.notices
        rules.append(Counter(f"{d.action} {d.rule.id}" if isinstance(d, Decision)
                             else f"notice {d.kind}" for d in decided))  # type: ignore[union-attr]
    assert not replay.bad_lines
    assert rules[0] == Counter({
        "approve auto-approve": 4, "revoke max-active-resources": 1,
        "revoke exclusive-environments": 2, "deny exclusive-environments": 1,
        "deny max-active-resources": 1, "escalate baseline-novel": 1,
        "approve break-glass": 1, "notice post-review-due": 1})
    # Issue J: one extension, and the break-glass reviewed after the fact.
    assert rules[1] == Counter({"approve review-approved": 1, "approve extension-approved": 1})
    assert rules[2] == Counter({"revoke task-completed": 1, "approve post-review-done": 1})


def test_event_times_stay_within_a_second_of_the_clock() -> None:
    """The demo's events are stamped now; a later phase's are not ahead of when it is sent."""
    times = [datetime.fromisoformat(event["at"]) for phase in demo_phases(NOW, run="t")
             for event in phase.events]
    assert times == sorted(times)
    assert times[0] == NOW
    assert times[-1] - NOW < timedelta(seconds=1)
