"""Step-up and reviews (policy/rules/review.py, policy/handlers/review.py)."""

from __future__ import annotations

from policy import decision_id
from tests.factories import at, event, raw_event, request
from tests.policy.rules.support import REVIEWED, policy, req, review
from tests.policy.rules.support import brief as brief_raw
from tests.policy.rules.support import run as run_raw
from tests.policy.support import (
    brief,
    run,
)


class TestReviews:
    def test_review_with_nothing_pending_is_denied(self) -> None:
        before, _ = run([request("r-1", [("a", "prod")])])
        review = event(raw_event("request.reviewed", event_id="e-rev", t=1, request_id="r-1",
                                 reviewer={"id": "bob"}, outcome="approved"))
        state, verdicts = run([review], state=before)
        assert brief(verdicts) == [("deny", "review-not-pending", "r-1", ())]
        assert "not waiting for review" in verdicts[0].reason
        assert state.grants == before.grants


def test_step_up_review_paths() -> None:
    active = policy(REVIEWED)
    state, verdicts = run_raw([
        req("r-1", ("db", "prod", "high"), ticket="OPS-1"),
        review("r-1", "alice", "denied", t=1),             # self-review (locks: see below)
        review("r-1", "dave", t=2),                        # not a listed reviewer
        review("r-1", "carol", t=3),                       # allowed
        review("r-9", "carol", t=4),                       # nothing pending
        req("r-2", ("db2", "prod", "high"), t=5, ticket="OPS-2"),
        review("r-2", "carol", "denied", t=6),
    ], active)
    assert brief_raw(verdicts) == [
        ("escalate", "step-up", "r-1"),
        ("deny", "review-self-approval", "r-1"),
        ("deny", "reviewer-not-allowed", "r-1"),
        ("approve", "review-approved", "r-1"),
        ("deny", "review-not-pending", "r-9"),
        ("escalate", "step-up", "r-2"),
        ("deny", "review-denied", "r-2"),
    ]
    assert [g.request_id for g in state.grants] == ["r-1"]
    assert verdicts[0].expires_at == at(600), "escalation says when it stops waiting"


def test_a_review_subverting_the_review_locks_the_request() -> None:
    active = policy(REVIEWED + "[defaults.locks]\ndefault_s = 900\nrequest_s = 120\n")
    forged = review("r-2", "carol", t=3) | {"signature": "not base64!"}
    state, verdicts = run_raw([
        req("r-1", ("db", "prod", "high"), ticket="OPS-1"),
        review("r-1", "alice", t=1),                       # self-approval: locks r-1
        review("r-1", "carol", t=2),                       # valid, but r-1 is locked
        req("r-2", ("db2", "prod", "high"), t=2, ticket="OPS-2"),
        forged,                                            # forged signature: locks r-2
        raw_event("lock.released", event_id="e-rel", t=4, target={"request_id": "r-2"},
                  by="ops"),
        review("r-2", "carol", t=5),
        review("r-1", "carol", "denied", t=200),           # after r-1's lock ran out
    ], active)
    assert brief_raw(verdicts) == [
        ("escalate", "step-up", "r-1"),
        ("deny", "review-self-approval", "r-1"),
        ("lock", "review-self-approval", "r-1"),
        ("deny", "request-locked", "r-1"),
        ("escalate", "step-up", "r-2"),
        ("deny", "review-signature", "r-2"),
        ("lock", "review-signature", "r-2"),
        ("unlock", "lock-released", "r-2"),
        ("approve", "review-approved", "r-2"),
        ("unlock", "lock-expired", "r-1"),
        ("deny", "review-denied", "r-1"),
    ]
    lock = verdicts[2]
    assert (lock.targets, lock.resources, lock.expires_at) == (("r-1",), ("db",), at(121)), \
        "locks.request_s, not default_s"
    assert verdicts[9].at == at(121)
    assert state.request_locks == ()
    assert state.locked_until is None, "a request lock leaves the subject unlocked"
    ids = [decision_id("default", "alice", verdict) for verdict in verdicts]
    assert len(set(ids)) == len(ids), "the deny and the lock of one event differ"


def test_unreviewed_request_expires() -> None:
    state, verdicts = run_raw([req("r-1", ("db", "prod", "high"), ticket="OPS-1"),
                           req("r-2", ("x", "dev", "low"), t=900)], policy(REVIEWED))
    assert brief_raw(verdicts)[1] == ("deny", "pending-expired", "r-1")
    assert verdicts[1].at == at(600)
    assert state.pending == ()
