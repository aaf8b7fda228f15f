"""Lock rules (policy/rules/locks.py)."""

from __future__ import annotations

from tests.factories import raw_event
from tests.policy.rules.support import brief, policy, req, run


def test_lock_release() -> None:
    _, verdicts = run([
        req("r-1", ("a", "dev", "low"), break_glass=True),
        req("r-2", ("b", "dev", "low"), t=1, break_glass=True),
        raw_event("lock.released", event_id="e-rel", t=2, target={"subject": "alice"},
                  by="ops"),
        req("r-3", ("c", "dev", "low"), t=3),
    ], policy())
    assert brief(verdicts)[-2:] == [("unlock", "lock-released", None),
                                    ("approve", "auto-approve", "r-3")]
