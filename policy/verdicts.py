"""What the core returns: one :class:`Verdict` per outcome, with holdings summarized."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from policy.rules.base import Rule
from schemas.decisions import Action, StateSummary
from schemas.state import Grant

__all__ = ["SUMMARY_MEMORY", "Verdict", "summarize"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One outcome of the core, before the shell adds ids, cause and policy reference.

    ``key`` is unique per (tenant, subject) and stable across replays: it is what the
    deterministic ``decision_id`` is derived from.
    """

    action: Action
    rule: Rule
    reason: str
    at: datetime
    request_id: str | None
    targets: tuple[str, ...]
    resources: tuple[str, ...]
    expires_at: datetime | None
    before: StateSummary
    after: StateSummary
    key: str
    post_review: bool = False


_NOTHING_HELD = StateSummary(active_grants=0, active_resources=0, envs=())

SUMMARY_MEMORY = 4096
"""How many distinct summaries :func:`summarize` keeps to hand out again (then it starts
over): counts and env names, a few hundred bytes each."""
_SUMMARIES: dict[tuple[int, int, tuple[str, ...]], StateSummary] = {}


def summarize(grants: Iterable[Grant]) -> StateSummary:
    """Count live grants, distinct resource ids and environments held."""
    # One pass, no comprehensions: every verdict needs a summary, most need two.
    count = 0
    resources: set[str] = set()
    envs: set[str] = set()
    for grant in grants:
        count += 1
        for resource in grant.resources:
            resources.add(resource.id)
            envs.add(resource.env)
    if not count:
        return _NOTHING_HELD  # immutable, so one instance serves every empty holding
    # Immutable too, and few distinct ones occur (a few grants over a few envs): one
    # instance per distinct summary, looked up rather than built each time (issue M).
    key = (count, len(resources), tuple(sorted(envs)))
    summary = _SUMMARIES.get(key)
    if summary is None:
        if len(_SUMMARIES) >= SUMMARY_MEMORY:
            _SUMMARIES.clear()
        summary = _SUMMARIES[key] = StateSummary(*key)
    return summary
