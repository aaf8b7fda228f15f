"""The correctness oracle: what the stream decided equals what ``simulate`` decides.

Stream decisions are deduplicated by ``decision_id`` (delivery is at least once) and compared
with a replay of the same events through the same core: no id may be missing or extra, and
no id may carry two different contents. Kafka coordinates, ``cause`` and ``emitted_at`` are
left out of the comparison: they say where and when, not what, and an expiry may be noticed
by a tick in one and by the subject's next event in the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from schemas.decisions import Decision
from schemas.policy import LoadedPolicy
from streams.engine.codec import encode_decision
from streams.engine.replay import BadLine, Replay, UndecidedTick, replay_lines

__all__ = ["Comparison", "compare", "simulated"]

_WHAT = ("action", "at", "tenant", "request_id", "targets", "resources", "expires_at",
         "reason", "post_review")


def _content(decision: dict[str, Any]) -> tuple[Any, ...]:
    return (*(str(decision.get(name)) for name in _WHAT), decision["rule"]["id"],
            decision["subject"]["id"], decision["policy"]["sha256"])


@dataclass
class Comparison:
    """Differences between the stream's decisions and the replay's."""

    matched: int = 0
    duplicates: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    conflicting: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.conflicting)

    def __str__(self) -> str:
        def line(decision: dict[str, Any]) -> str:
            return (f"{decision['at']} {decision['subject']['id']} {decision['action']} "
                    f"{decision['request_id']} {decision['targets']} [{decision['rule']['id']}]"
                    f" {decision['reason']}")
        parts = [f"{self.matched} matched, {self.duplicates} duplicates, "
                 f"{len(self.missing)} missing, {len(self.extra)} extra, "
                 f"{len(self.conflicting)} conflicting"]
        parts += [f"  missing from the stream: {line(d)}" for d in self.missing[:10]]
        parts += [f"  extra in the stream:     {line(d)}" for d in self.extra[:10]]
        parts += [f"  conflict: {line(a)}  VS  {line(b)}" for a, b in self.conflicting[:10]]
        return "\n".join(parts)


def simulated(events: Iterable[dict[str, Any]], policy: LoadedPolicy,
              until: datetime | None = None, replay: Replay | None = None,
              ) -> list[dict[str, Any]]:
    """Replay events (contract dicts, in event-time order) as ``jitwatch simulate`` does;
    pass ``replay`` to keep its final per-subject states (the grant tables)."""
    lines = [orjson.dumps(event) for event in events]
    out = []
    for item in replay_lines(lines, policy, replay or Replay(), 1 << 20, until):
        if isinstance(item, BadLine):
            raise AssertionError(f"oracle input line {item.number} is bad: {item.message}")
        if isinstance(item, UndecidedTick):  # the stream dead-letters it too: no decision
            continue
        out.append(orjson.loads(encode_decision(item)))
    return out


def compare(stream: Iterable[dict[str, Any]],
            replay: Iterable[dict[str, Any] | Decision]) -> Comparison:
    """Compare decision sets by id and content."""
    result = Comparison()
    seen: dict[str, dict[str, Any]] = {}
    for decision in stream:
        if decision["decision_id"] in seen:
            result.duplicates += 1
            if _content(seen[decision["decision_id"]]) != _content(decision):
                result.conflicting.append((seen[decision["decision_id"]], decision))
            continue
        seen[decision["decision_id"]] = decision
    expected = {}
    for item in replay:
        decision = (orjson.loads(encode_decision(item)) if isinstance(item, Decision)
                    else item)
        expected[decision["decision_id"]] = decision
    for decision_id, decision in expected.items():
        got = seen.get(decision_id)
        if got is None:
            result.missing.append(decision)
        elif _content(got) != _content(decision):
            result.conflicting.append((got, decision))
        else:
            result.matched += 1
    result.extra = [d for i, d in seen.items() if i not in expected]
    return result
