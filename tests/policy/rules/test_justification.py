"""Rules justification-reason and -ticket (policy/rules/justification.py)."""

from __future__ import annotations

from tests.policy.rules.support import brief, policy, req, run


def test_justification_reason_and_ticket() -> None:
    _, verdicts = run([req("r-1", ("db", "dev", "medium"), reason=""),
                       req("r-2", ("db", "dev", "low"), t=1, reason=""),
                       req("r-3", ("db", "dev", "high"), t=2, ticket="not-a-ticket")],
                      policy())
    assert brief(verdicts) == [("deny", "justification-reason", "r-1"),
                               ("approve", "auto-approve", "r-2"),
                               ("deny", "justification-ticket", "r-3")]
