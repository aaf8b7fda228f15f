"""Decision ids, tenant isolation and the shared step of stream and replay."""

from __future__ import annotations

from importlib import resources

from policy.decisions import to_decisions
from policy.engine import step
from schemas.decisions import Cause
from schemas.policy import parse_policy
from schemas.state import StoredSubject
from tests.factories import request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())


def cause_of(event_id: str) -> Cause:
    return Cause(event_id=event_id, type="request.created")


def replay(*events):  # type: ignore[no-untyped-def]
    stored: StoredSubject | None = None
    decisions = []
    for item in events:
        result = step(stored, item, POLICY, cause_of(item.event_id))
        stored = result.stored
        decisions.extend(result.decisions)
    return stored, decisions


def test_decision_ids_are_deterministic_and_distinct() -> None:
    events = [request(f"r-{n}", [(f"x{n}", "prod")], t=n) for n in range(4)]
    events.append(request("r-9", [("y", "research"), ("z", "research")], t=9))
    _, first = replay(*events)
    _, second = replay(*events)
    assert [d.decision_id for d in first] == [d.decision_id for d in second]
    assert len({d.decision_id for d in first}) == len(first)
    assert first[-1].decision_id.startswith("d-")
    assert len(first[-1].decision_id) == 34


def test_an_expiry_has_one_id_whichever_event_notices_it() -> None:
    _, via_one = replay(request("r-1", [("a", "prod")], ttl_s=60),
                        request("r-2", [("b", "prod")], t=100))
    _, via_other = replay(request("r-1", [("a", "prod")], ttl_s=60),
                          request("r-3", [("c", "staging")], t=500, event_id="e-other"))
    expiry_one = [d for d in via_one if d.rule.id == "ttl-expired"]
    expiry_other = [d for d in via_other if d.rule.id == "ttl-expired"]
    assert [d.decision_id for d in expiry_one] == [d.decision_id for d in expiry_other]
    assert expiry_one[0].at == expiry_other[0].at


def test_replay_decisions_use_event_time_for_emitted_at() -> None:
    _, decisions = replay(request("r-1", [("a", "prod")], t=7))
    assert decisions[0].emitted_at == decisions[0].at


def test_tenants_never_share_state() -> None:
    events = [request(f"r-{n}", [(f"x{n}", "prod")], t=n, tenant="acme") for n in range(3)]
    events.append(request("r-9", [("y", "prod")], t=9, tenant="globex"))
    stored, decisions = replay(*events)
    assert [d.action for d in decisions] == ["approve"] * 4, "caps are counted per tenant"
    assert stored is not None
    assert sorted(stored.tenants) == ["acme", "globex"]
    assert len(stored.tenants["acme"].grants) == 3
    assert decisions[-1].tenant == "globex"
    assert decisions[-1].state.before.active_grants == 0


def test_redelivery_is_unchanged() -> None:
    first = request("r-1", [("a", "prod")])
    stored, _ = replay(first)
    again = step(stored, first, POLICY, cause_of(first.event_id))
    assert again.changed is False
    assert again.decisions == ()
    assert again.stored is stored


def test_to_decisions_with_stream_clock() -> None:
    from policy.core import decide
    from schemas.state import SubjectState

    event = request("r-1", [("a", "prod")])
    _, verdicts = decide(SubjectState(), event, event.at, POLICY.policy)
    stamp = event.at.replace(microsecond=4000)
    [decision] = to_decisions(verdicts, event, POLICY.ref, cause_of("e"), emitted_at=stamp)
    assert decision.emitted_at == stamp
    assert decision.policy == POLICY.ref
    assert decision.rule.description
