"""The correctness oracle: what the stream decided equals what ``simulate`` decides.

Stream decisions are deduplicated by ``decision_id`` (delivery is at least once) and compared
with a replay of the same events through the same core: no id may be missing or extra, and
no id may carry two different contents, on either side (ids are content hashes,
``policy/decisions.py``: a second content under one id is a bug, never an update to keep).
The content is every field but ``cause`` and ``emitted_at``: they say where and when, not
what, and an expiry may be noticed by a tick in one and by the subject's next event in the
other (the cause's event id of an input is part of the id itself).
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

_NOT_CONTENT = frozenset({"cause", "emitted_at"})


def _content(decision: dict[str, Any]) -> bytes:
    return orjson.dumps({name: value for name, value in decision.items()
                         if name not in _NOT_CONTENT}, option=orjson.OPT_SORT_KEYS)


def _differing(one: dict[str, Any], other: dict[str, Any]) -> str:
    """The content fields two decisions of one id disagree on."""
    return ", ".join(sorted(name for name in set(one) | set(other)
                            if name not in _NOT_CONTENT and one.get(name) != other.get(name)))


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
        parts += [f"  conflict in {_differing(a, b)}: {line(a)}  VS  {line(b)}"
                  for a, b in self.conflicting[:10]]
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


def _by_id(decisions: Iterable[dict[str, Any]], result: Comparison,
           ) -> tuple[dict[str, dict[str, Any]], int]:
    """The first decision of each id, and how many repeated one; a repeat with other
    contents goes to ``result.conflicting`` (kept first, not overwritten)."""
    first: dict[str, dict[str, Any]] = {}
    repeats = 0
    for decision in decisions:
        earlier = first.get(decision["decision_id"])
        if earlier is None:
            first[decision["decision_id"]] = decision
            continue
        repeats += 1
        if _content(earlier) != _content(decision):
            result.conflicting.append((earlier, decision))
    return first, repeats


def compare(stream: Iterable[dict[str, Any]],
            replay: Iterable[dict[str, Any] | Decision]) -> Comparison:
    """Compare decision sets by id and content; an id with two contents on either side is
    a conflict."""
    result = Comparison()
    seen, result.duplicates = _by_id(stream, result)
    expected, _ = _by_id((orjson.loads(encode_decision(item)) if isinstance(item, Decision)
                          else item for item in replay), result)
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
