"""Properties of the core over generated event sequences (hypothesis)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.core import decide
from schemas.policy import parse_policy
from schemas.state import SubjectState
from tests.factories import at, event, raw_event, raw_request

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


locking_step = st.one_of(
    st.tuples(st.just("glass"), st.sampled_from("abc"), st.none()),
    st.tuples(st.just("release"), st.none(), st.none()),
    st.tuples(st.just("plain"), st.sampled_from("abc"), st.none()),
)
locking_sequences = st.lists(st.tuples(locking_step, st.integers(0, 4000)), min_size=1,
                             max_size=25)


def build_locking(sequence: list[tuple[Any, int]]) -> list[Any]:
    events, clock = [], 0
    for number, ((kind, resource, _), gap) in enumerate(sequence):
        clock += gap
        if kind == "release":
            events.append(event(raw_event("lock.released", event_id=f"e-{number}", t=clock,
                                          target={"subject": "alice"}, by="ops")))
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
        state, verdicts = decide(state, item, item.at, POLICY)
        if locked and item.type == "request.created":
            assert "approve" not in [v.action for v in verdicts]
        if state.locked_until is not None:
            assert state.grants == (), "a lock ends every grant"
