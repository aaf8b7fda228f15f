"""One test per rule family beyond the seed rules (issue B): the verdict and its rule id."""

from __future__ import annotations

from typing import Any

from policy import Verdict, decide, decision_id
from schemas.policy import Policy, parse_policy
from schemas.state import SubjectState
from tests.factories import at, event, raw_event, raw_request
from tests.keys import policy_keys_toml, signed

BASE = 'version = "t"\n'


def policy(text: str = "") -> Policy:
    return parse_policy(BASE + text).policy


def run(raws: list[dict[str, Any]], active: Policy) -> tuple[SubjectState, list[Verdict]]:
    state, verdicts = SubjectState(), []
    for raw in raws:
        item = event(raw)
        state, made = decide(state, item, item.at, active)
        verdicts.extend(made)
    return state, verdicts


def brief(verdicts: list[Verdict]) -> list[tuple[str, str, str | None]]:
    return [(v.action, v.rule.id, v.request_id) for v in verdicts]


def req(request_id: str, *resources: tuple[str, str, str], t: float = 0,
        **extra: Any) -> dict[str, Any]:
    listed = [{"id": rid, "env": env, "sensitivity": level} for rid, env, level in resources]
    return raw_request(request_id, listed, t=t, **extra)


def review(request_id: str, reviewer: str, outcome: str = "approved", t: float = 1,
           subject: str = "alice") -> dict[str, Any]:
    # Signed with the reviewer's test key (tests/keys.py): approvals count only signed.
    return signed(raw_event("request.reviewed", event_id=f"rev-{request_id}-{reviewer}-{t}",
                            t=t, subject=subject, request_id=request_id,
                            reviewer={"id": reviewer}, outcome=outcome))


REVIEWED = ('[defaults.step_up]\nfrom_sensitivity = "high"\npending_ttl_s = 600\n'
            '[[defaults.step_up.reviewers]]\nenvs = ["prod"]\nids = ["carol"]\n'
            + policy_keys_toml("defaults.step_up", ["carol", "alice", "dave"]))


def test_identity_issuer_and_attestation() -> None:
    active = policy('[defaults.identity]\nallowed_issuers = { workload = ["spiffe://a"] }\n')
    workload = {"id": "alice", "kind": "workload", "issuer": "spiffe://b", "attested": True}
    _, verdicts = run([req("r-1", ("db", "dev", "low"), subject="alice") | {"subject": workload},
                       req("r-2", ("db", "dev", "low"), t=1) | {"subject": {
                           **workload, "issuer": "spiffe://a", "attested": False}}], active)
    assert brief(verdicts) == [("deny", "identity-issuer", "r-1"),
                               ("deny", "identity-attestation", "r-2")]


def test_ttl_limits_and_deny_over_max() -> None:
    active = policy('[defaults.ttl]\ndefault_s = 600\nmax_s = 3600\nover_max = "deny"\n'
                    '[[defaults.ttl.limits]]\nsensitivity_from = "critical"\ndefault_s = 60\n'
                    "max_s = 300\n")
    _, verdicts = run([req("r-1", ("db", "dev", "low")),
                       req("r-2", ("vault", "dev", "critical"), t=1, ticket="OPS-1"),
                       req("r-3", ("vault", "dev", "critical"), t=2, ttl_s=301,
                           ticket="OPS-1")], active)
    assert verdicts[0].expires_at == at(600)
    assert verdicts[1].action == "escalate", "critical steps up by default"
    assert brief(verdicts)[2] == ("deny", "ttl-max", "r-3")


def test_justification_reason_and_ticket() -> None:
    _, verdicts = run([req("r-1", ("db", "dev", "medium"), reason=""),
                       req("r-2", ("db", "dev", "low"), t=1, reason=""),
                       req("r-3", ("db", "dev", "high"), t=2, ticket="not-a-ticket")],
                      policy())
    assert brief(verdicts) == [("deny", "justification-reason", "r-1"),
                               ("approve", "auto-approve", "r-2"),
                               ("deny", "justification-ticket", "r-3")]


def test_deny_new_strategies() -> None:
    active = policy('[defaults.caps]\nstrategy = "deny_new"\nmax_active_resources = 2\n'
                    '[[defaults.exclusive]]\nname = "sod"\nroles = ["approver", "submitter"]\n'
                    'strategy = "deny_new"\n')
    approver = {"id": "a", "env": "dev", "sensitivity": "low", "roles": ["approver"]}
    submitter = {"id": "b", "env": "dev", "sensitivity": "low", "roles": ["submitter"]}
    _, verdicts = run([raw_request("r-1", [approver]),
                       raw_request("r-2", [submitter], t=1),
                       raw_request("r-3", [{**approver, "id": "c"}, {**approver, "id": "d"}],
                                   t=2)], active)
    assert brief(verdicts) == [("approve", "auto-approve", "r-1"),
                               ("deny", "exclusive-environments", "r-2"),
                               ("deny", "max-active-resources", "r-3")]


def test_time_window_in_its_time_zone() -> None:
    active = policy('[[defaults.windows]]\nenvs = ["prod"]\ntimezone = "Europe/Berlin"\n'
                    'start = "08:00"\nend = "18:00"\noutside = "deny"\n')
    # T0 is Monday 2026-11-23 10:00 UTC = 11:00 in Berlin; +10 h is 21:00 there.
    _, verdicts = run([req("r-1", ("db", "prod", "low")),
                       req("r-2", ("db2", "prod", "low"), t=10 * 3600),
                       req("r-3", ("db3", "dev", "low"), t=10 * 3600 + 1)], active)
    verdicts = [v for v in verdicts if v.rule.id != "ttl-expired"]
    assert brief(verdicts) == [("approve", "auto-approve", "r-1"),
                               ("deny", "time-window", "r-2"),
                               ("approve", "auto-approve", "r-3")]
    assert "Mon 21:00" in verdicts[1].reason


def test_step_up_review_paths() -> None:
    active = policy(REVIEWED)
    state, verdicts = run([
        req("r-1", ("db", "prod", "high"), ticket="OPS-1"),
        review("r-1", "alice", "denied", t=1),             # self-review (locks: see below)
        review("r-1", "dave", t=2),                        # not a listed reviewer
        review("r-1", "carol", t=3),                       # allowed
        review("r-9", "carol", t=4),                       # nothing pending
        req("r-2", ("db2", "prod", "high"), t=5, ticket="OPS-2"),
        review("r-2", "carol", "denied", t=6),
    ], active)
    assert brief(verdicts) == [
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
    state, verdicts = run([
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
    assert brief(verdicts) == [
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
    state, verdicts = run([req("r-1", ("db", "prod", "high"), ticket="OPS-1"),
                           req("r-2", ("x", "dev", "low"), t=900)], policy(REVIEWED))
    assert brief(verdicts)[1] == ("deny", "pending-expired", "r-1")
    assert verdicts[1].at == at(600)
    assert state.pending == ()


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
    state, verdicts = run([
        req("r-1", ("db", "prod", "medium")) | {"subject": workload},
        review("r-1", "carol", t=1),
        req("r-2", ("db2", "prod", "medium"), t=2) | {"subject": workload},
    ], policy(REVIEWED))
    assert brief(verdicts) == [("escalate", "baseline-novel", "r-1"),
                               ("approve", "review-approved", "r-1"),
                               ("approve", "auto-approve", "r-2")]
    assert state.seen == ("prod/medium",)
    assert state.kind == "workload", "a review naming the subject by id keeps its kind"


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


def test_withdrawing_a_pending_request() -> None:
    state, verdicts = run([req("r-1", ("db", "prod", "high"), ticket="OPS-1"),
                           raw_event("request.withdrawn", event_id="e-w", t=1,
                                     request_id="r-1")], policy(REVIEWED))
    assert brief(verdicts)[-1] == ("deny", "request-withdrawn", "r-1")
    assert state.pending == ()


def test_unknown_tenant_refused() -> None:
    active = policy('unknown_tenants = "deny"\n[tenants.acme.caps]\nmax_active_resources = 1\n')
    _, verdicts = run([req("r-1", ("db", "dev", "low"), tenant="initech")], active)
    assert brief(verdicts) == [("deny", "unknown-tenant", "r-1")]
