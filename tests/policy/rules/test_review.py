"""Step-up and reviews (policy/rules/review.py, policy/handlers/review.py)."""

from __future__ import annotations

from policy import decision_id
from schemas.decisions import DecisionSubject, PolicyRef
from tests.factories import at, event, raw_event, request
from tests.keys import signed
from tests.policy.rules.support import OPERATORS, REVIEWED, policy, release, req, review
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
    r1 = req("r-1", ("db", "prod", "high"), ticket="OPS-1")
    r2 = req("r-2", ("db2", "prod", "high"), t=5, ticket="OPS-2")
    state, verdicts = run_raw([
        r1,
        review("r-1", "alice", "denied", t=1, of=r1),      # self-review, signed: no lock
        review("r-1", "dave", t=2, of=r1),                 # not a listed reviewer
        review("r-1", "carol", t=3, of=r1),                # allowed
        review("r-9", "carol", t=4),                       # nothing pending
        r2,
        review("r-2", "carol", "denied", t=6, of=r2),
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


def test_only_a_signed_self_approval_locks_the_request() -> None:
    active = policy(REVIEWED + OPERATORS + "[defaults.locks]\ndefault_s = 900\nrequest_s = 120\n")
    r1 = req("r-1", ("db", "prod", "high"), ticket="OPS-1")
    r2 = req("r-2", ("db2", "prod", "high"), t=2, ticket="OPS-2")
    forged = review("r-2", "carol", t=3, of=r2) | {"signature": "not base64!"}
    state, verdicts = run_raw([
        r1,
        review("r-1", "alice", t=1, of=r1),                # signed self-approval: locks r-1
        review("r-1", "carol", t=2, of=r1),                # valid, but r-1 is locked
        r2,
        forged,                                            # unverified: no lock (issue H)
        review("r-2", "alice", t=4) | {"key_id": None, "signature": None},  # unsigned self
        release({"request_id": "r-1"}, t=5),               # ops releases r-1's lock
        review("r-2", "carol", t=6, of=r2),
        review("r-1", "carol", "denied", t=200, of=r1),
    ], active)
    assert brief_raw(verdicts) == [
        ("escalate", "step-up", "r-1"),
        ("deny", "review-self-approval", "r-1"),
        ("lock", "review-self-approval", "r-1"),
        ("deny", "request-locked", "r-1"),
        ("escalate", "step-up", "r-2"),
        ("deny", "review-signature", "r-2"),
        ("deny", "review-signature", "r-2"),
        ("unlock", "lock-released", "r-1"),
        ("approve", "review-approved", "r-2"),
        ("deny", "review-denied", "r-1"),
    ]
    lock = verdicts[2]
    assert (lock.targets, lock.resources, lock.expires_at) == (("r-1",), ("db",), at(121)), \
        "locks.request_s, not default_s"
    assert "unverified reviewer carol" in verdicts[5].reason
    assert "unverified reviewer alice" in verdicts[6].reason
    assert state.request_locks == ()
    assert state.locked_until is None, "a request lock leaves the subject unlocked"
    subject = DecisionSubject(id="alice", kind="human")
    ref = PolicyRef(version="test", sha256="0" * 64)
    ids = [decision_id("default", subject, verdict, ref) for verdict in verdicts]
    assert len(set(ids)) == len(ids), "the deny and the lock of one event differ"


def test_a_review_binds_the_request_it_decides() -> None:
    # Request ids not remembered, so r-1 can be asked again: the digest alone must hold.
    active = policy(REVIEWED + "[defaults.limits]\nrequest_retention_s = 0\n")
    asked = req("r-1", ("db", "prod", "high"), ticket="OPS-1")
    again = req("r-1", ("db", "prod", "critical"), t=2, ticket="OPS-1", event_id="e-again")
    _, verdicts = run_raw([
        asked,
        raw_event("request.withdrawn", event_id="e-w", t=1, request_id="r-1"),
        again,
        review("r-1", "carol", t=3, of=asked),             # signed for the first r-1
        review("r-1", "carol", t=4, of=asked | {"ttl_s": 60}),  # for another ttl
        review("r-1", "carol", t=5, of=again),
    ], active)
    assert brief_raw(verdicts)[3:] == [
        ("deny", "review-signature", "r-1"),
        ("deny", "review-signature", "r-1"),
        ("approve", "review-approved", "r-1"),
    ]


def test_a_request_id_is_asked_once_and_reviewed_once() -> None:
    # Issue H: a re-created id is refused while remembered, and a counted review replayed
    # after its event id left the 64-id redelivery memory counts for nothing.
    active = policy(REVIEWED)
    asked = req("r-1", ("db", "prod", "high"), ticket="OPS-1")
    approval = review("r-1", "carol", t=3, of=asked)
    fillers = [raw_event("session.ended", event_id=f"f-{n}", t=4, session_id=f"s-{n}")
               for n in range(70)]
    state, verdicts = run_raw([
        asked,
        approval,
        raw_event("request.withdrawn", event_id="e-w", t=4, request_id="r-1"),
        *fillers,
        req("r-1", ("db", "prod", "high"), t=5, ticket="OPS-1", event_id="e-again"),
        approval,
    ], active)
    assert brief_raw(verdicts) == [
        ("escalate", "step-up", "r-1"),
        ("approve", "review-approved", "r-1"),
        ("revoke", "request-withdrawn", "r-1"),
        ("deny", "request-id-remembered", "r-1"),
    ]
    assert approval["event_id"] not in state.applied, \
        "the review's id left the redelivery memory: its signed mark dropped the replay"
    assert (len(state.signed), len(state.requested)) == (1, 1)


def test_look_alike_reviewer_ids_are_the_same_reviewer() -> None:
    active = policy(REVIEWED)
    mine = req("r-1", ("db", "prod", "high"), ticket="OPS-1", subject="Carol")
    look_alike = signed(raw_event("request.reviewed", event_id="e-r", t=1, subject="Carol",
                                  request_id="r-1", reviewer={"id": "c\u200barol"},
                                  outcome="approved"), request=mine, key_holder="carol")
    _, verdicts = run_raw([mine, look_alike], active)
    assert brief_raw(verdicts)[1:] == [("deny", "review-self-approval", "r-1"),
                                       ("lock", "review-self-approval", "r-1")]


def test_unreviewed_request_expires() -> None:
    state, verdicts = run_raw([req("r-1", ("db", "prod", "high"), ticket="OPS-1"),
                           req("r-2", ("x", "dev", "low"), t=900)], policy(REVIEWED))
    assert brief_raw(verdicts)[1] == ("deny", "pending-expired", "r-1")
    assert verdicts[1].at == at(600)
    assert state.pending == ()


def test_a_pending_request_stored_before_digests_is_reviewed_by_nobody() -> None:
    from policy import decide
    from schemas.state import StoredSubject

    stored = StoredSubject.model_validate_json(
        b'{"v":1,"tenants":{"default":{"pending":[{"request_id":"r-1","resources":'
        b'[{"id":"db","env":"prod","sensitivity":"high"}],"requested_at":'
        b'"2026-11-23T10:00:00Z","pending_until":"2026-11-23T10:10:00Z","ttl_s":600}]}}}')
    state = stored.tenants["default"]
    assert state.pending[0].request_digest is None
    item = event(review("r-1", "carol", t=1))
    _, verdicts = decide(state, item, item.at, policy(REVIEWED))
    assert [(v.action, v.rule.id) for v in verdicts] == [("deny", "review-signature")]
    assert "no digest" in verdicts[0].reason
