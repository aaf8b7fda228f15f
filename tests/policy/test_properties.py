"""Properties of the core over generated event sequences (hypothesis)."""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import decide
from schemas.events import LockReleased, RequestReviewed
from schemas.policy import OperatorKey, ReviewerKey, ReviewerSet, parse_policy
from schemas.state import SubjectState
from tests.factories import at, event, raw_event, raw_request, variant
from tests.keys import operator_keys, policy_keys, signed, signed_release

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text()).policy

resource = st.tuples(st.sampled_from("abcdefg"), st.sampled_from(["prod", "research",
                                                                   "staging"]))
step_kind = st.one_of(
    st.tuples(st.just("request"), st.lists(resource, min_size=1, max_size=4),
              st.sampled_from([None, 30, 600, 40_000])),
    st.tuples(st.sampled_from(["request.withdrawn", "task.completed"]),
              st.integers(0, 30), st.none()),
)
sequences = st.lists(st.tuples(step_kind, st.integers(0, 900)), min_size=1, max_size=30)


def build(sequence: list[tuple[Any, int]]) -> list[Any]:
    events, clock = [], 0
    for number, ((kind, payload, ttl), gap) in enumerate(sequence):
        clock += gap
        if kind == "request":
            extra = {} if ttl is None else {"ttl_s": ttl}
            events.append(event(raw_request(f"r-{number}", list(payload), t=clock,
                                            event_id=f"e-{number}", **extra)))
        else:
            events.append(event(raw_event(kind, event_id=f"e-{number}", t=clock,
                                          request_id=f"r-{payload}")))
    return events


def replay(events: list[Any]) -> list[tuple[SubjectState, tuple[Any, ...]]]:
    state, trace = SubjectState(), []
    for item in events:
        state, verdicts = decide(state, item, item.at, POLICY)
        trace.append((state, verdicts))
    return trace


common = settings(max_examples=200, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])


@common
@given(sequences)
def test_same_input_same_verdicts(sequence: list[tuple[Any, int]]) -> None:
    events = build(sequence)
    assert replay(events) == replay(events)


@common
@given(sequences)
def test_invariants_hold_after_every_event(sequence: list[tuple[Any, int]]) -> None:
    events = build(sequence)
    for item, (state, verdicts) in zip(events, replay(events), strict=True):
        held = {r.id for grant in state.grants for r in grant.resources}
        assert len(held) <= POLICY.defaults.caps.max_active_resources
        assert all(grant.expires_at > item.at for grant in state.grants), "no grant outlives"
        envs = {r.env for grant in state.grants for r in grant.resources}
        assert not {"prod", "research"} <= envs, "never both exclusive environments"
        denied = {v.request_id for v in verdicts if v.action == "deny"}
        assert not denied & {grant.request_id for grant in state.grants}
        assert all(grant.expires_at - grant.granted_at <= at(POLICY.defaults.ttl.max_s) - at(0)
                   for grant in state.grants)


@common
@given(sequences)
def test_redelivering_everything_changes_nothing(sequence: list[tuple[Any, int]]) -> None:
    events = build(sequence)
    state = replay(events)[-1][0]
    for item in events[-10:]:
        again, verdicts = decide(state, item, item.at, POLICY)
        assert verdicts == ()
        assert again is state


OPERATED = variant(POLICY, operators=tuple(OperatorKey(**entry)
                                           for entry in operator_keys(["ops", "alice"])))
"""The default policy with two operators: ops, and alice (the subject, who may never release
her own locks)."""

locking_step = st.one_of(
    st.tuples(st.just("glass"), st.sampled_from("abc"), st.none()),
    st.tuples(st.just("release"), st.sampled_from(["ops", "alice", "mallory"]), st.none()),
    st.tuples(st.just("plain"), st.sampled_from("abc"), st.none()),
)
locking_sequences = st.lists(st.tuples(locking_step, st.integers(0, 4000)), min_size=1,
                             max_size=25)


def build_locking(sequence: list[tuple[Any, int]]) -> list[Any]:
    events, clock = [], 0
    for number, ((kind, resource, _), gap) in enumerate(sequence):
        clock += gap
        if kind == "release":  # resource: the operator (mallory is listed nowhere)
            events.append(event(signed_release(raw_event(
                "lock.released", event_id=f"e-{number}", t=clock, target={"subject": "alice"},
                by=resource), "ops" if resource == "mallory" else resource)))
        else:
            events.append(event(raw_request(f"r-{number}", [(resource, "prod")], t=clock,
                                            event_id=f"e-{number}",
                                            break_glass=kind == "glass")))
    return events


@common
@given(locking_sequences)
def test_a_locked_subject_is_never_approved(sequence: list[tuple[Any, int]]) -> None:
    events = build_locking(sequence)
    state = SubjectState()
    for item in events:
        locked = state.locked_until is not None and state.locked_until > item.at
        state, verdicts = decide(state, item, item.at, OPERATED)
        if locked and item.type == "request.created":
            assert "approve" not in [v.action for v in verdicts]
        if locked and isinstance(item, LockReleased) and item.by != "ops":
            assert state.locked_until is not None, "only a listed operator unlocks"
            assert [v.rule.id for v in verdicts] == ["release-not-authorized"]
        if state.locked_until is not None:
            assert state.grants == (), "a lock ends every grant"


REVIEWED = variant(OPERATED, step_up={
    "reviewers": (ReviewerSet(envs=("prod",), ids=("carol",)),),
    "reviewer_keys": tuple(ReviewerKey(**entry) for entry in policy_keys(["alice", "carol"])),
}, locks={"request_s": 600})

review_step = st.one_of(
    st.tuples(st.just("ask"), st.just(0)),
    st.tuples(st.sampled_from(["self", "forged", "approved", "denied", "release"]),
              st.integers(0, 2)),
)
review_sequences = st.lists(st.tuples(review_step, st.sampled_from([0, 10, 300, 700, 4000])),
                            min_size=1, max_size=25)


def build_reviews(sequence: list[tuple[Any, int]]) -> list[Any]:
    """Pending requests of alice and reviews of them: honest (carol, signed), self-approvals
    (alice), forged (carol, bad signature); releases of request locks. A review or release
    names one of the three latest requests."""
    events, clock, asked = [], 0, ["r-none"]
    raws: dict[str, dict[str, Any]] = {}
    for number, ((kind, target), gap) in enumerate(sequence):
        clock += gap
        eid, request_id = f"e-{number}", asked[-1 - min(target, len(asked) - 1)]
        if kind == "ask":
            asked.append(f"r-{number}")
            raws[f"r-{number}"] = raw_request(f"r-{number}", [{"id": "db", "env": "prod",
                                                               "sensitivity": "high"}],
                                              t=clock, event_id=eid, ticket="OPS-1")
            events.append(event(raws[f"r-{number}"]))
        elif kind == "release":
            events.append(event(signed_release(raw_event(
                "lock.released", event_id=eid, t=clock, target={"request_id": request_id},
                by="ops"))))
        else:
            outcome = "denied" if kind == "denied" else "approved"
            reviewer = "alice" if kind == "self" else "carol"
            raw = signed(raw_event("request.reviewed", event_id=eid, t=clock,
                                   request_id=request_id, reviewer={"id": reviewer},
                                   outcome=outcome), request=raws.get(request_id, "0" * 64))
            events.append(event(raw | {"signature": "AAAA"} if kind == "forged" else raw))
    return events


@common
@given(review_sequences)
def test_a_locked_request_is_never_approved(sequence: list[tuple[Any, int]]) -> None:
    events = build_reviews(sequence)
    state = SubjectState()
    for item in events:
        locked = {lock.request_id for lock in state.request_locks if lock.until > item.at}
        state, verdicts = decide(state, item, item.at, REVIEWED)
        approved = {v.request_id for v in verdicts if v.action == "approve"}
        assert not approved & locked, "no approve of a locked request"
        assert all(lock.until > item.at for lock in state.request_locks), "ended locks go"
        locks = [v for v in verdicts if v.action == "lock"]
        attempt = isinstance(item, RequestReviewed) and item.outcome == "approved" and (
            item.reviewer.id == item.subject.id and item.signature != "AAAA")
        if not attempt:
            assert locks == [], "only a validly signed self-approval locks"
        for lock in locks:
            assert lock.targets == (lock.request_id,)
            assert lock.expires_at == item.at + timedelta(seconds=600), "locks.request_s"
