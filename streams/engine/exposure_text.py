"""The exposure report's summary as (label, value) rows: printed by ``jitwatch report`` on
the terminal and shown as the HTML report's first table, so both always say the same."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streams.engine.exposure import Exposure

__all__ = ["percentile", "summary_rows"]


def percentile(values: Iterable[float], share: float) -> float | None:
    """The nearest-rank ``share`` percentile (0..1) of ``values``; ``None`` when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * share // 1))  # ceil without floats creeping in
    return ordered[int(rank) - 1]


def _seconds(values: list[float]) -> str:
    if not values:
        return "none"
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return f"{len(values)}: p50 {p50:.3f} s, p99 {p99:.3f} s, max {max(values):.3f} s"


def _top(counts: Mapping[str, float], unit: str = "", limit: int = 5) -> str:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    shown = ", ".join(f"{name} {value:.1f}{unit}" if isinstance(value, float)
                      else f"{name} {value}" for name, value in ranked)
    more = len(counts) - len(ranked)
    return (shown + (f" (+{more} more)" if more > 0 else "")) or "none"


def _share(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.1f} %)" if total else "0"


def summary_rows(exposure: Exposure) -> list[tuple[str, str]]:
    """Every headline figure of ``exposure`` as a (label, value) row."""
    grants = exposure.grants
    asked = sum(exposure.request_actions.values())
    lives = [((g.end or g.expires) - g.start).total_seconds() / g.granted_ttl_s
             for g in grants if g.end is not None and g.granted_ttl_s > 0]
    rules = {f"{action}/{rule}": count for (action, rule), count in exposure.rules.items()}
    period = (f"{exposure.since.isoformat() if exposure.since else 'the first decision'} "
              f"to {exposure.until.isoformat()}")
    rows = [
        ("period", period),
        ("decisions", f"{exposure.decisions}"
         + (f" ({exposure.unreadable} unreadable records skipped)"
            if exposure.unreadable else "")),
        ("by action", _top(exposure.actions, limit=6)),
        ("requests and extensions decided", f"{asked}: " + ", ".join(
            f"{action} {_share(exposure.request_actions[action], asked)}"
            for action in ("approve", "deny", "escalate"))),
        ("top rules", _top(rules, limit=8)),
        ("grants held in the period", f"{len(grants)}, "
         f"{sum(exposure.hours_by_subject.values()):.1f} grant-hours"),
        ("grant-hours by subject", _top(exposure.hours_by_subject, " h")),
        ("grant-hours by owner", _top(exposure.hours_by_owner, " h")),
        ("grant-hours by env", _top(exposure.hours_by_env, " h")),
        ("grant-hours by sensitivity", _top(exposure.hours_by_sensitivity, " h")),
        ("TTL clamped", f"{exposure.clamps} of {len(grants)} grants"),
        ("extensions approved", f"{exposure.extensions}"),
        ("how grants ended", _top(exposure.ended_by, limit=8)),
        ("life / TTL of ended grants", "none" if not lives else
         f"p50 {percentile(lives, 0.5):.2f}, mean {sum(lives) / len(lives):.2f}"),
        ("task.completed -> revoke", _seconds(exposure.task_to_revoke_s)),
        ("expiry lateness", _seconds(exposure.expiry_lateness_s)),
        ("review queue", _queue(exposure)),
        ("break-glass grants", f"{sum(g.break_glass for g in grants)}; post-review: "
         + _top(exposure.break_glass)),
        ("locks by cause", _top(exposure.locks, limit=8)),
        ("most locked subjects", _top(exposure.locked_subjects)),
        ("unlocks", _top(exposure.unlocks)),
        ("policies in force", "; ".join(
            f"{version} (sha256 {sha[:12]}) {first.isoformat()} to {last.isoformat()}, "
            f"{count} decisions" for version, sha, first, last, count in exposure.policies)
         or "none"),
    ]
    if exposure.policy_loads:
        rows.append(("policy loads", "; ".join(
            f"{load.at.isoformat()} {load.outcome} "
            f"{load.new.version if load.new and load.new.version else '?'} by {load.worker}"
            for load in exposure.policy_loads[-10:])))
    return rows


def _queue(exposure: Exposure) -> str:
    if not exposure.queue:
        return "none"
    ages = [age for _, age, _ in exposure.queue]
    outcomes: dict[str, int] = {}
    for _, _, outcome in exposure.queue:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return (f"{len(ages)} escalated; age p50 {percentile(ages, 0.5):.0f} s, max "
            f"{max(ages):.0f} s; " + _top(outcomes))
