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


def test_whoami_text_shows_recorded_worker_names_and_versions_escaped(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    found = {
        "principal": "User:watcher", "security_protocol": "PLAINTEXT",
        "bootstrap": "127.0.0.1:9092", "app_id": "jitwatch", "consumer_group": "jitwatch",
        "topics": {"reads": ["jit.requests"], "writes": ["jit.decisions"]},
        "acls": {"source": "ops/principals.toml", "bindings": ["ALLOW READ\x1b[2K"]},
        "policy": {"error": "bad\npolicy"},
        "policy_signers_file": None,
        "audit_heads": {"jitwatch:audit:p0": {"entry": "0-1", "length": 1,
                                               "hash": "ab\u200bcd"}},
        # A worker name and version come from records in the trail: producer claims.
        "policy_loads": [{"at": "2026-11-24T01:00:00Z",
                          "worker": "host:1\n  2026-11-24T02:00:00Z trusted:2 loaded",
                          "outcome": "loaded", "version": "v\x1b[31m", "sha256": "a" * 64}],
    }
    monkeypatch.setattr(identity, "inventory", lambda *_: found)
    assert identity.cmd_whoami(load_settings(), SimpleNamespace(json=False, policy=None)) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\u200b" not in out
    assert "host:1\\n  2026-11-24T02:00:00Z trusted:2 loaded" in out
    assert "v\\x1b[31m" in out
    assert "bad\\npolicy" in out
    assert not any(line.lstrip().startswith("2026-11-24T02:00:00Z") for line in out.splitlines())
