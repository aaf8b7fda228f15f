"""Rules break-glass and break-glass-limit (policy/rules/break_glass.py)."""

from __future__ import annotations

from tests.factories import at
from tests.policy.rules.support import brief, policy, req, run


def test_break_glass_and_its_ration() -> None:
    state, verdicts = run([
        req("r-1", ("db", "prod", "high"), break_glass=True, ticket="INC-1"),
        req("r-2", ("db2", "prod", "low"), t=60, break_glass=True),
        req("r-3", ("db3", "dev", "low"), t=120),
    ], policy())
    assert brief(verdicts) == [
        ("approve", "break-glass", "r-1"),
        ("deny", "break-glass-limit", "r-2"),
        ("lock", "break-glass-limit", "r-2"),
        ("deny", "subject-locked", "r-3"),
    ]
    assert verdicts[0].post_review is True
    assert verdicts[0].expires_at == at(900)
    assert verdicts[2].targets == ("r-1",), "the lock ends live grants"
    assert state.grants == ()
