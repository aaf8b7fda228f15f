"""Write the issue J golden cases (extensions, approval thresholds, break-glass follow-up):
their events are signed with the test keys (tests/keys.py), so they are generated.

    .venv/bin/python -m tests.golden.make_lifecycle

writes ``events.jsonl`` and ``policy.toml`` of each case; ``expected.jsonl`` and
``README.md`` are written by hand, ``decisions.jsonl`` by ``jitwatch simulate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.keys import policy_keys_toml, signed

HERE = Path(__file__).parent
REVIEWERS = ["alice@example.com", "bob@example.com", "carol@example.com", "dev@example.com"]
DAY = "2026-11-23"


def _policy(name: str, extra: str = "") -> str:
    return (f'# Golden-case policy (issue J); test-only reviewer keys (tests/keys.py).\n'
            f'version = "golden-{name}"\n\n[defaults.identity]\n'
            f'require_owner = ["workload", "agent"]\n{extra}\n'
            f'[[defaults.step_up.reviewers]]\nids = {json.dumps(REVIEWERS)}\n'
            + policy_keys_toml("defaults.step_up", REVIEWERS))


def _request(n: int, at: str, rid: str, subject: str = "dev@example.com",
             sensitivity: str = "low", **more: Any) -> dict[str, Any]:
    return {"type": "request.created", "event_id": f"e-{n}", "at": f"{DAY}T{at}Z",
            "tenant": "acme", "subject": {"id": subject}, "request_id": rid,
            "resources": [{"id": "db/orders", "env": "prod", "sensitivity": sensitivity}],
            "reason": "incident follow-up", "ticket": "OPS-7", **more}


def _extend(n: int, at: str, rid: str, ttl_s: int, subject: str = "dev@example.com"
            ) -> dict[str, Any]:
    return {"type": "request.extension_requested", "event_id": f"e-{n}",
            "at": f"{DAY}T{at}Z", "tenant": "acme", "subject": {"id": subject},
            "request_id": rid, "ttl_s": ttl_s, "reason": "job still running",
            "ticket": "OPS-7"}


def _review(n: int, at: str, request: dict[str, Any], reviewer: str, outcome: str = "approved",
            day: str = DAY) -> dict[str, Any]:
    raw = {"type": "request.reviewed", "event_id": f"e-{n}", "at": f"{day}T{at}Z",
           "tenant": "acme", "subject": request["subject"], "request_id": request["request_id"],
           "reviewer": {"id": reviewer}, "outcome": outcome}
    return signed(raw, request=request)


def _as_request(extension: dict[str, Any], sensitivity: str) -> dict[str, Any]:
    """The request an extension is evaluated as (what its review signs)."""
    return {"type": "request.created", "event_id": extension["event_id"],
            "at": extension["at"], "tenant": "acme", "subject": extension["subject"],
            "request_id": extension["request_id"],
            "resources": [{"id": "db/orders", "env": "prod", "sensitivity": sensitivity}],
            "ttl_s": extension["ttl_s"]}


def _write(case: str, events: list[dict[str, Any]], extra: str = "") -> None:
    folder = HERE / case
    folder.mkdir(exist_ok=True)
    (folder / "policy.toml").write_text(_policy(case, extra), encoding="utf-8")
    (folder / "events.jsonl").write_text(
        "".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")


def main() -> None:
    agent = {"id": "agent://acme/copilot", "kind": "agent", "attested": True, "owner": "team-ai"}
    _write("break-glass-kinds", [
        _request(1, "10:00:00", "r-1", break_glass=True) | {"subject": agent},
        _request(2, "10:00:10", "r-2", break_glass=True) | {
            "subject": {"id": "spiffe://acme.example/ci", "kind": "workload",
                        "attested": True}},
        _request(3, "10:00:20", "r-3", break_glass=True),
    ])
    _write("break-glass-ignore-windows", [
        _request(1, "10:00:00", "r-1", break_glass=True),
        _request(2, "10:00:10", "r-2", subject="bob@example.com"),
    ], '[[defaults.windows]]\nenvs = ["prod"]\ndays = ["tue"]\noutside = "deny"\n\n'
       '[defaults.break_glass]\nignore_windows = true\n')
    first = _request(1, "10:00:00", "r-1", sensitivity="critical")
    second = _request(6, "10:01:00", "r-2", sensitivity="critical")
    _write("review-threshold", [
        first,
        _review(2, "10:00:10", first, "alice@example.com"),
        _review(3, "10:00:20", first, "alice@example.com"),
        _review(4, "10:00:30", first, "bob@example.com"),
        second,
        _review(7, "10:01:10", second, "alice@example.com"),
        _review(8, "10:01:20", second, "carol@example.com", "denied"),
    ], "[defaults.step_up]\napprovals = { critical = 2 }\n")
    _write("extension-approved", [
        _request(1, "10:00:00", "r-1", ttl_s=3600),
        _extend(2, "10:30:00", "r-1", 1800),
        _request(3, "11:45:00", "r-2", subject="bob@example.com"),
    ])
    _write("extension-limit", [
        _request(1, "10:00:00", "r-1", ttl_s=3600),
        _extend(2, "10:10:00", "r-1", 1800),
        _extend(3, "10:20:00", "r-1", 1800),
        _extend(4, "10:30:00", "r-1", 60),
    ], "[defaults.ttl]\nmax_extensions = 2\nmax_total_s = { low = 7200 }\n")
    glass = _request(3, "10:00:20", "r-3", subject="bob@example.com", break_glass=True)
    _write("extension-denied", [
        _request(1, "10:00:00", "r-1", ttl_s=600),
        _extend(2, "10:10:00", "r-1", 600),
        glass,
        _extend(4, "10:00:30", "r-3", 600, subject="bob@example.com"),
        _request(5, "10:20:00", "r-5", subject="carol@example.com", ttl_s=3600),
        {"type": "session.activity", "event_id": "e-6", "at": f"{DAY}T10:20:10Z",
         "tenant": "acme", "subject": {"id": "carol@example.com"}, "session_id": "s-1",
         "resource": "db/payroll", "action": "SELECT"},
        _extend(7, "10:20:20", "r-5", 600, subject="carol@example.com"),
    ])
    high = _request(1, "10:00:00", "r-1", sensitivity="high", ttl_s=3600)
    more = _extend(3, "10:30:00", "r-1", 1800)
    _write("extension-review", [
        high,
        _review(2, "10:00:10", high, "alice@example.com"),
        more,
        _review(4, "10:30:10", _as_request(more, "high"), "alice@example.com"),
    ])
    bg1 = _request(1, "10:00:00", "r-1", break_glass=True)
    bg2 = _request(2, "10:00:10", "r-2", subject="bob@example.com", break_glass=True)
    bg3 = _request(3, "10:00:20", "r-3", subject="carol@example.com", break_glass=True)
    _write("post-review-done", [
        bg1, bg2, bg3,
        _review(4, "11:00:00", bg1, "alice@example.com"),
        _review(5, "11:00:10", bg2, "alice@example.com", "denied"),
        _review(6, "11:00:20", bg3, "carol@example.com"),
        _request(7, "11:00:30", "r-7", subject="bob@example.com"),
    ])
    over1 = _request(1, "10:00:00", "r-1", break_glass=True)
    over2 = _request(2, "10:00:10", "r-2", break_glass=True)
    _write("post-review-overdue", [
        over1, over2,
        _request(3, "12:00:00", "r-3", break_glass=True),
        _review(4, "12:00:10", over1, "alice@example.com"),
        _request(5, "12:00:20", "r-5", break_glass=True),
        _review(6, "12:00:30", over2, "bob@example.com"),
        _request(7, "12:00:40", "r-7", break_glass=True),
    ], "[defaults.break_glass]\nmax_per_window = 3\nreview_within_s = 3600\n")


if __name__ == "__main__":
    main()
