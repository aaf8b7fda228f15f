"""Rules baseline-rate and baseline-novel (policy/rules/baseline.py)."""

from __future__ import annotations

from tests.factories import at
from tests.policy.rules.support import REVIEWED, brief, policy, req, review, run


def test_rate_baseline_locks_then_lock_expires() -> None:
    active = policy("[defaults.baseline]\nmax_requests = 2\nwindow_s = 60\nlock_s = 300\n")
    _, verdicts = run([req(f"r-{n}", (f"x{n}", "dev", "low"), t=n) for n in range(3)]
                      + [req("r-9", ("y", "dev", "low"), t=400)], active)
    assert brief(verdicts)[2:] == [
        ("deny", "baseline-rate", "r-2"),
        ("lock", "baseline-rate", "r-2"),
        ("unlock", "lock-expired", None),
        ("approve", "auto-approve", "r-9"),
    ]
    assert verdicts[4].at == at(302)


def test_novel_workload_escalates_once() -> None:
    workload = {"id": "alice", "kind": "workload", "attested": True}
    asked = req("r-1", ("db", "prod", "medium")) | {"subject": workload}
    state, verdicts = run([
        asked,
        review("r-1", "carol", t=1, of=asked),
        req("r-2", ("db2", "prod", "medium"), t=2) | {"subject": workload},
    ], policy(REVIEWED))
    assert brief(verdicts) == [("escalate", "baseline-novel", "r-1"),
                               ("approve", "review-approved", "r-1"),
                               ("approve", "auto-approve", "r-2")]
    assert state.seen == ("prod/medium",)
    assert state.kind == "workload", "a review naming the subject by id keeps its kind"
