"""whoami's view of the policy running workers enforce (no broker, no Redis)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from streams.audit import query as audit_query
from streams.cli import identity
from streams.settings import load_settings


def _load(worker: str, at: str, outcome: str, new: str, old: str | None) -> SimpleNamespace:
    def summary(sha: str | None) -> dict[str, str] | None:
        return None if sha is None else {"version": f"v-{sha}", "sha256": sha * 64}
    return SimpleNamespace(decision={"schema": "jit.policy-load/v1", "worker": worker,
                                     "at": at, "outcome": outcome, "new": summary(new),
                                     "old": summary(old)})


async def test_each_workers_newest_load_and_the_policy_it_left_in_force(
        monkeypatch: pytest.MonkeyPatch) -> None:
    found = [  # as query returns them: oldest first
        _load("a:1", "2026-11-24T01:00:00Z", "loaded", "1", None),
        _load("b:2", "2026-11-24T01:30:00Z", "loaded", "1", None),
        _load("a:1", "2026-11-24T02:00:00Z", "loaded", "2", "1"),
        SimpleNamespace(decision={"action": "approve", "at": "2026-11-24T02:10:00Z"}),
        _load("b:2", "2026-11-24T02:30:00Z", "refused", "3", "1"),
    ]

    async def fake_query(*_: Any, **__: Any) -> list[SimpleNamespace]:
        return found

    monkeypatch.setattr(audit_query, "query", fake_query)
    loads = await identity._recorded_loads(None, load_settings())
    assert [(load["worker"], load["outcome"], load["sha256"][0]) for load in loads] == [
        ("b:2", "refused", "1"),  # its reload was refused: version 1 stays in force
        ("a:1", "loaded", "2"),
    ]
