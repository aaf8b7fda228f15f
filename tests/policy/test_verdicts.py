"""Verdict summaries (policy/verdicts.py) as the ledger records them."""

from __future__ import annotations

from tests.factories import request
from tests.policy.support import (
    run,
    summary,
)


class TestSummaries:
    def test_every_verdict_shows_holdings_before_and_after(self) -> None:
        _, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("b", "staging"), ("a", "staging")], t=1),
            request("r-3", [("c", "research")], t=2),
        ])
        assert [(v.action, v.before, v.after) for v in verdicts] == [
            ("approve", summary(0, 0), summary(1, 1, "prod")),
            ("approve", summary(1, 1, "prod"), summary(2, 2, "prod", "staging")),
            ("approve", summary(2, 2, "prod", "staging"),
             summary(3, 3, "prod", "research", "staging")),
            ("revoke", summary(3, 3, "prod", "research", "staging"),
             summary(2, 3, "research", "staging")),
        ]

    def test_a_deny_shows_unchanged_holdings(self) -> None:
        _, verdicts = run([request("r-1", [("a", "prod")]),
                           request("r-2", [("b", "prod"), ("c", "research")], t=1)])
        assert verdicts[1].before == verdicts[1].after == summary(1, 1, "prod")

    def test_an_expiry_summary_counts_the_grants_still_live_then(self) -> None:
        _, verdicts = run([request("r-1", [("a", "prod")], ttl_s=10),
                           request("r-2", [("b", "staging")], ttl_s=20, t=1),
                           request("r-3", [("c", "dev")], t=30)])
        assert [(v.rule.id, v.before, v.after) for v in verdicts[2:]] == [
            ("ttl-expired", summary(2, 2, "prod", "staging"), summary(1, 1, "staging")),
            ("ttl-expired", summary(1, 1, "staging"), summary(0, 0)),
            ("auto-approve", summary(0, 0), summary(1, 1, "dev")),
        ]
