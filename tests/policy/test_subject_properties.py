"""Properties of the engine over generated traffic of one to three subjects (hypothesis).

Complements ``test_properties.py`` (one subject, the core alone): here events go through
``policy.step`` as the stream sends them, so decision ids are checked as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import next_deadline, step, summarize, tick
from schemas.decisions import Cause, Decision
from schemas.events import InputEvent
from schemas.notices import Notice
from schemas.policy import parse_policy
from schemas.state import StoredSubject, SubjectState
from tests.factories import event, raw_event, raw_request

LOADED = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
CAP = LOADED.policy.defaults.caps.max_active_resources
EXCLUSIVE = set(LOADED.policy.defaults.exclusive[0].envs)
SUBJECTS = ("alice", "bob", "carol")

resource = st.tuples(st.sampled_from("abcdef"), st.sampled_from(["prod", "research",
                                                                  "staging"]))
ttl = st.sampled_from([None, 30, 600, 5000, 40_000])


@st.composite
def traffic(draw: st.DrawFn) -> list[InputEvent]:
    """request.created / request.withdrawn / task.completed, at non-decreasing times.

    Some requests reuse an earlier request id and some events are redelivered as they were.
    """
    subjects = SUBJECTS[:draw(st.integers(1, 3))]
    events: list[InputEvent] = []
    clock = 0
    for number in range(draw(st.integers(1, 30))):
        clock += draw(st.sampled_from([0, 0, 1, 10, 60, 300, 900, 4000]))
        kind = draw(st.sampled_from(["request"] * 4 + ["reuse", "request.withdrawn",
                                                       "task.completed", "redeliver"]))
        subject = draw(st.sampled_from(subjects))
        earlier = f"r-{draw(st.integers(0, max(number - 1, 0)))}"
        if kind == "redeliver" and events:
            events.append(draw(st.sampled_from(events)))
        elif kind in ("request.withdrawn", "task.completed"):
            events.append(event(raw_event(kind, event_id=f"e-{number}", t=clock,
                                          subject=subject, request_id=earlier)))
        else:
            seconds = draw(ttl)
            extra: dict[str, Any] = {} if seconds is None else {"ttl_s": seconds}
            events.append(event(raw_request(
                earlier if kind == "reuse" else f"r-{number}",
                draw(st.lists(resource, min_size=1, max_size=4)), t=clock, subject=subject,
                event_id=f"e-{number}", **extra)))
    return events


@dataclass
class Run:
    decisions: list[Decision] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    stored: dict[str, StoredSubject] = field(default_factory=dict)


def state_of(run: Run, subject: str) -> SubjectState:
    stored = run.stored.get(subject)
    return stored.tenants.get("default", SubjectState()) if stored else SubjectState()


def replay(events: list[InputEvent], *, ticks: bool = False, check: bool = False) -> Run:
    """Step every event for its subject; with ``ticks`` fire each deadline as time passes."""
    run = Run()
    for item in events:
        subject = item.subject.id
        if ticks:
            while (deadline := next_deadline(state_of(run, subject))) is not None \
                    and deadline <= item.at:
                result = tick(run.stored[subject], "default", subject, deadline, LOADED)
                run.stored[subject] = result.stored
                run.decisions.extend(result.decisions)
                run.notices.extend(result.notices)
        old = state_of(run, subject)
        result = step(run.stored.get(subject), item, LOADED,
                      Cause(event_id=item.event_id, type=item.type))
        run.stored[subject] = result.stored
        run.decisions.extend(result.decisions)
        run.notices.extend(result.notices)
        if check:
            # A redelivery of an event the subject remembers changes nothing. One that found
            # the subject with nothing stored and decided nothing was not remembered (issue
            # H: such events leave no state), so its redelivery is decided like any event.
            check_step(item, old, state_of(run, subject), result.decisions, result.changed,
                       redelivered=item.event_id in old.applied)
    return run


def check_step(item: InputEvent, old: SubjectState, new: SubjectState,
               decisions: tuple[Decision, ...], changed: bool, *, redelivered: bool) -> None:
    if redelivered:
        assert (changed, decisions, new) == (False, (), old), "a redelivery changes nothing"
        return
    held = {r.id for grant in new.grants for r in grant.resources}
    assert len(held) <= CAP, "never more distinct resources than the cap"
    assert all(grant.expires_at > item.at for grant in new.grants), "no grant outlives"
    envs = {r.env for grant in new.grants for r in grant.resources}
    assert not envs >= EXCLUSIVE, "never both exclusive environments"
    request_id = getattr(item, "request_id", None)
    denied = any(d.action == "deny" and d.request_id == request_id for d in decisions)
    if item.type == "request.created" and denied:
        # Same grant, same lifetime: a notice given on the way (issue J) only moves its
        # notice_at, which is bookkeeping of what was said, not of what is held.
        kept = {(grant.request_id, grant.expires_at) for grant in old.grants}
        assert all((grant.request_id, grant.expires_at) in kept for grant in new.grants), (
            "a denied request adds nothing")
        assert not any(d.action == "approve" for d in decisions)
    current = summarize(old.grants)
    for decision in decisions:
        assert decision.state.before == current, "summaries chain from the old state"
        current = decision.state.after
    assert current == summarize(new.grants), "... to the new one"


common = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(traffic())
def test_invariants_hold_after_every_event(events: list[InputEvent]) -> None:
    replay(events, check=True)


@common
@given(traffic())
def test_same_input_same_decisions_and_ids(events: list[InputEvent]) -> None:
    first, second = replay(events), replay(events)
    assert first.decisions == second.decisions
    ids = [d.decision_id for d in first.decisions]
    assert ids == [d.decision_id for d in second.decisions]
    assert len(set(ids)) == len(ids), "every decision has its own id"


def essence(decision: Decision) -> tuple[Any, ...]:
    """A decision without what legitimately depends on who noticed it (cause, emitted_at)."""
    return (decision.decision_id, decision.action, decision.rule.id, decision.at,
            decision.request_id, decision.targets, decision.resources, decision.expires_at,
            decision.reason, decision.state)


@common
@given(traffic())
def test_timers_and_late_noticing_agree_on_every_decision(events: list[InputEvent]) -> None:
    """Firing expiries on time or at the subject's next event gives the same decisions."""
    late, on_time = replay(events), replay(events, ticks=True)
    assert sorted(map(essence, late.decisions), key=repr) \
        == sorted(map(essence, on_time.decisions), key=repr)


@common
@given(traffic())
def test_timers_and_late_noticing_agree_on_every_notice(events: list[InputEvent]) -> None:
    """Issue J: a notice is the same (id, time, content) whether a tick at its moment or the
    subject's next event gives it, each is given once, and none comes after its grant's
    expiry or for a moment later than the last event."""
    late, on_time = replay(events), replay(events, ticks=True)

    def said(run: Run) -> list[tuple[Any, ...]]:
        return sorted((n.notice_id, n.kind, n.at, n.request_id, n.due_at, n.reason)
                      for n in run.notices)

    assert said(late) == said(on_time)
    ids = [n.notice_id for n in on_time.notices]
    assert len(set(ids)) == len(ids), "each notice once"
    last = max(item.at for item in events)  # a redelivery may come last, with an old time
    assert all(n.at < n.due_at and n.at <= last for n in on_time.notices)
