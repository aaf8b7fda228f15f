"""Decisions made from verdicts (ids, times, fields) and the engine's tenant-keyed step."""

from __future__ import annotations

import copy
import re
from importlib import resources

from policy import Verdict, decide, decision_id, step, tick, to_decisions
from policy.decide import applied_mark
from schemas.decisions import Cause, Decision, DecisionSubject, RuleRef, StateChange
from schemas.events import InputEvent
from schemas.policy import parse_policy
from schemas.state import StoredSubject, SubjectState
from tests.factories import at, event, raw_event, raw_request, request

LOADED = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
POLICY = LOADED.policy
ID = re.compile(r"^d-[0-9a-f]{32}$")


def _id(tenant: str, subject: str, verdict: Verdict) -> str:
    """The id a decision about ``subject`` (a human, as these events name it) gets."""
    return decision_id(tenant, DecisionSubject(id=subject, kind="human"), verdict, LOADED.ref)


def cause(item: InputEvent) -> Cause:
    return Cause(event_id=item.event_id, type=item.type)


def core(events: list[InputEvent],
         state: SubjectState | None = None) -> tuple[SubjectState, list[Verdict]]:
    state = state or SubjectState()
    verdicts: list[Verdict] = []
    for item in events:
        state, made = decide(state, item, item.at, POLICY)
        verdicts.extend(made)
    return state, verdicts


def engine(events: list[InputEvent],
           stored: StoredSubject | None = None) -> tuple[StoredSubject | None, list[Decision]]:
    decisions: list[Decision] = []
    for item in events:
        result = step(stored, item, LOADED, cause(item))
        stored = result.stored
        decisions.extend(result.decisions)
    return stored, decisions


HOLDING = [request("r-1", [("a", "research")], ttl_s=60),
           request("r-2", [("b", "staging")], t=1),
           request("r-3", [("c", "staging")], t=2)]


class TestDecisionIds:
    def test_ids_are_deterministic_well_formed_and_unique(self) -> None:
        events = [*HOLDING, request("r-4", [("d", "prod"), ("e", "prod")], t=3),
                  request("r-5", [("f", "prod"), ("g", "research")], t=4),
                  request("r-6", [("h", "prod")], t=200)]
        _, first = engine(events)
        _, second = engine(events)
        assert first == second
        ids = [d.decision_id for d in first]
        assert all(ID.fullmatch(i) for i in ids)
        assert len(set(ids)) == len(ids)
        assert {d.action for d in first} >= {"approve", "revoke", "deny"}

    def test_two_revokes_from_one_event_get_different_ids(self) -> None:
        _, verdicts = core([*HOLDING, request("r-4", [("d", "prod"), ("e", "prod")], t=3)])
        revokes = [v for v in verdicts if v.action == "revoke"]
        assert [v.rule.id for v in revokes] == ["exclusive-environments",
                                                "max-active-resources"]
        ids = {_id("default", "alice", v) for v in verdicts[-3:]}
        assert len(ids) == 3

    def test_two_revokes_by_the_same_rule_get_different_ids(self) -> None:
        _, verdicts = core([request("r-1", [("a", "prod")]), request("r-2", [("b", "prod")]),
                            request("r-3", [("c", "prod")]),
                            request("r-4", [(x, "prod") for x in "xy"], t=1)])
        revokes = [v for v in verdicts if v.action == "revoke"]
        assert [v.rule.id for v in revokes] == ["max-active-resources"] * 2
        assert _id("default", "alice", revokes[0]) \
            != _id("default", "alice", revokes[1])

    def test_an_expiry_has_the_same_id_whichever_event_notices_it(self) -> None:
        state, _ = core(HOLDING)
        later = [
            request("r-9", [("z", "staging")], t=100),
            event(raw_event("task.completed", event_id="e-done", t=500, request_id="r-2")),
            event(raw_event("session.ended", event_id="e-sess", t=61, session_id="s")),
        ]
        seen = []
        for item in later:
            copied = copy.deepcopy(state)
            _, verdicts = decide(copied, item, item.at, POLICY)
            [expiry] = [v for v in verdicts if v.rule.id == "ttl-expired"]
            assert (expiry.targets, expiry.at) == (("r-1",), at(60))
            seen.append(_id("default", "alice", expiry))
        stored = StoredSubject(tenants={"default": state})
        by_tick = tick(stored, "default", "alice", at(60), LOADED).decisions
        seen.append(by_tick[0].decision_id)
        assert len(set(seen)) == 1

    def test_ids_differ_by_tenant_and_subject(self) -> None:
        _, [verdict] = core([request("r-1", [("a", "prod")])])
        ids = {_id(tenant, subject, verdict)
               for tenant in ("default", "acme") for subject in ("alice", "bob")}
        assert len(ids) == 4

    def test_the_same_grant_ended_by_different_rules_gets_different_ids(self) -> None:
        state, _ = core([request("r-1", [("a", "prod")], ttl_s=60)])
        done = event(raw_event("task.completed", event_id="e-x", t=10, request_id="r-1"))
        _, [by_task] = decide(state, done, done.at, POLICY)
        later = request("r-2", [("b", "dev")], t=60)
        by_expiry = decide(state, later, later.at, POLICY)[1][0]
        assert (by_task.targets, by_expiry.targets) == (("r-1",), ("r-1",))
        assert _id("default", "alice", by_task) \
            != _id("default", "alice", by_expiry)


class TestToDecisions:
    def test_without_emitted_at_each_decision_uses_its_own_at(self) -> None:
        state, _ = core(HOLDING)
        item = request("r-9", [("z", "staging")], t=100)
        _, verdicts = decide(state, item, item.at, POLICY)
        decisions = to_decisions(verdicts, item, LOADED.ref, cause(item), emitted_at=None)
        assert [(d.rule.id, d.at, d.emitted_at) for d in decisions] == [
            ("ttl-expired", at(60), at(60)), ("auto-approve", at(100), at(100))]

    def test_emitted_at_when_given_stamps_every_decision(self) -> None:
        state, _ = core(HOLDING)
        item = request("r-9", [("z", "staging")], t=100)
        _, verdicts = decide(state, item, item.at, POLICY)
        stamp = at(100.004)
        decisions = to_decisions(verdicts, item, LOADED.ref, cause(item), emitted_at=stamp)
        assert [d.emitted_at for d in decisions] == [stamp, stamp]
        assert [d.at for d in decisions] == [at(60), at(100)]

    def test_fields_follow_the_verdict(self) -> None:
        state, _ = core(HOLDING)
        item = event(raw_request("r-4", [("d", "prod"), ("e", "prod")], t=3, tenant="default",
                                 subject="alice"))
        _, verdicts = decide(state, item, item.at, POLICY)
        coordinates = Cause(event_id=item.event_id, type=item.type, topic="jit.requests",
                            partition=3, offset=1234)
        decisions = to_decisions(verdicts, item, LOADED.ref, coordinates, emitted_at=None)
        for verdict, decision in zip(verdicts, decisions, strict=True):
            assert decision.decision_id == _id("default", "alice", verdict)
            assert (decision.action, decision.request_id, decision.targets,
                    decision.resources, decision.expires_at, decision.reason) == (
                verdict.action, verdict.request_id, verdict.targets, verdict.resources,
                verdict.expires_at, verdict.reason)
            assert (decision.rule.id, decision.rule.description) == (
                verdict.rule.id, verdict.rule.description)
            assert (decision.state.before, decision.state.after) == (verdict.before,
                                                                     verdict.after)
            assert decision.cause == coordinates
            assert decision.policy == LOADED.ref
            assert decision.tenant == "default"
            assert decision.subject.id == "alice"
        dumped = decisions[-1].model_dump(mode="json", by_alias=True)
        assert dumped["schema"] == "jit.decision/v1"
        assert dumped["state"]["before"] == {"active_grants": 3, "active_resources": 4,
                                             "envs": ["prod", "staging"]}

    def test_built_as_model_construct_builds_them(self) -> None:
        # to_decisions skips model_construct for speed; the models must not tell.
        state, _ = core(HOLDING)
        item = request("r-9", [("z", "prod")], t=100)
        _, verdicts = decide(state, item, item.at, POLICY)
        decisions = to_decisions(verdicts, item, LOADED.ref, cause(item), emitted_at=at(101))
        assert len(decisions) > 1
        for verdict, fast in zip(verdicts, decisions, strict=True):
            slow = Decision.model_construct(
                decision_id=fast.decision_id, action=verdict.action, at=verdict.at,
                emitted_at=at(101), tenant=item.tenant, subject=fast.subject,
                request_id=verdict.request_id, targets=verdict.targets,
                resources=verdict.resources, expires_at=verdict.expires_at,
                rule=RuleRef.model_construct(id=verdict.rule.id,
                                             description=verdict.rule.description),
                reason=verdict.reason, policy=LOADED.ref,
                state=StateChange.model_construct(before=verdict.before, after=verdict.after),
                cause=cause(item), post_review=verdict.post_review)
            assert fast == slow
            for mine, theirs in ((fast, slow), (fast.rule, slow.rule),
                                 (fast.state, slow.state)):
                assert list(vars(mine).items()) == list(vars(theirs).items())
                assert mine.model_fields_set == theirs.model_fields_set
                assert (mine.__pydantic_extra__, mine.__pydantic_private__) == (None, None)
            assert fast.model_dump_json(by_alias=True) == slow.model_dump_json(by_alias=True)
            assert Decision.model_validate_json(fast.model_dump_json(by_alias=True)) == fast

    def test_no_verdicts_no_decisions(self) -> None:
        item = request("r-1", [("a", "prod")])
        assert to_decisions((), item, LOADED.ref, cause(item), emitted_at=None) == ()


class TestStep:
    def test_stored_value_and_subject_are_what_validation_builds(self) -> None:
        # step() builds both unvalidated for speed; the models must not tell.
        item = request("r-1", [("a", "prod")])
        result = step(None, item, LOADED, cause(item))
        stored = StoredSubject(tenants=dict(result.stored.tenants))
        assert result.stored == stored
        assert list(vars(result.stored).items()) == list(vars(stored).items())
        assert result.stored.model_fields_set == stored.model_fields_set
        [decision] = result.decisions
        subject = DecisionSubject(id="alice", kind="human", owner=None)
        assert list(vars(decision.subject).items()) == list(vars(subject).items())
        assert decision.subject.model_fields_set == subject.model_fields_set

    def test_tenants_keep_separate_caps_for_the_same_subject(self) -> None:
        events = [request(f"r-{n}", [(f"x{n}", "prod")], t=n, tenant=tenant)
                  for n in range(3) for tenant in ("acme", "default")]
        stored, decisions = engine(events)
        assert [d.action for d in decisions] == ["approve"] * 6
        assert stored is not None
        assert {name: len(s.grants) for name, s in stored.tenants.items()} == {
            "acme": 3, "default": 3}
        stored, more = engine([request("r-9", [("y", "prod")], t=9, tenant="acme")], stored)
        assert [(d.action, d.tenant, d.targets) for d in more] == [
            ("approve", "acme", ()), ("revoke", "acme", ("r-0",))]
        assert stored is not None
        assert len(stored.tenants["default"].grants) == 3

    def test_tenants_keep_separate_exclusive_environments(self) -> None:
        stored, decisions = engine([request("r-1", [("a", "prod")], tenant="acme"),
                                    request("r-2", [("b", "research")], t=1,
                                            tenant="default")])
        assert [d.action for d in decisions] == ["approve", "approve"]
        assert stored is not None
        assert [g.request_id for g in stored.tenants["acme"].grants] == ["r-1"]

    def test_the_same_event_id_in_two_tenants_is_not_a_redelivery(self) -> None:
        first = request("r-1", [("a", "prod")], tenant="acme", event_id="e-1")
        second = request("r-1", [("a", "prod")], tenant="default", event_id="e-1")
        stored, _ = engine([first])
        result = step(stored, second, LOADED, cause(second))
        assert result.changed
        assert [d.action for d in result.decisions] == ["approve"]
        assert result.decisions[0].state.before.active_grants == 0

    def test_a_redelivery_returns_changed_false_and_the_same_value(self) -> None:
        first = request("r-1", [("a", "prod")])
        stored, _ = engine([first])
        again = step(stored, first, LOADED, cause(first))
        assert (again.changed, again.decisions) == (False, ())
        assert again.stored is stored

    def test_an_event_without_verdicts_still_records_its_id(self) -> None:
        # On a subject with nothing stored it stores nothing (issue H, finding 5); on a
        # stored subject its id is remembered as before.
        item = event(raw_event("session.ended", event_id="e-s", session_id="s"))
        assert step(None, item, LOADED, cause(item)).changed is False
        stored, _ = engine(HOLDING)
        result = step(stored, item, LOADED, cause(item))
        assert (result.changed, result.decisions) == (True, ())
        assert result.stored.tenants["default"].applied[-1] == applied_mark(item)
        assert step(result.stored, item, LOADED, cause(item)).changed is False

    def test_stored_value_is_never_mutated(self) -> None:
        stored, _ = engine(HOLDING)
        assert stored is not None
        snapshot = copy.deepcopy(stored)
        engine([request("r-4", [("d", "prod"), ("e", "prod")], t=100)], stored)
        assert stored == snapshot

    def test_a_decision_names_the_subject_as_its_request_did(self) -> None:
        raw = raw_request("r-1", [("a", "staging")], ttl_s=60)
        raw["subject"] = {"id": "alice", "kind": "human", "owner": "team-payments"}
        stored, _ = engine([event(raw)])
        assert stored is not None
        session = event(raw_event("session.ended", event_id="e-s", t=100, session_id="s"))
        via_event = step(stored, session, LOADED, cause(session)).decisions
        via_tick = tick(stored, "default", "alice", at(60), LOADED).decisions
        assert via_event[0].decision_id == via_tick[0].decision_id
        assert via_tick[0].subject.owner == "team-payments"
        assert via_event[0].subject == via_tick[0].subject
