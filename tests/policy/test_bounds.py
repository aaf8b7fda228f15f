"""Issue H, finding 5: a subject's stored state is bounded, and events that decide nothing
leave nothing stored."""

from __future__ import annotations

from policy import step
from schemas.decisions import Cause
from schemas.policy import parse_policy
from tests.factories import event, raw_event, raw_request
from tests.policy.test_catalog import PACKAGED, brief, run

LIMITS = parse_policy("""
version = "test-limits"
unknown_tenants = "defaults"

[defaults.limits]
max_grants = 2
max_tenants = 1
max_seen = 2
""")


def test_session_ended_for_an_unknown_session_stores_nothing() -> None:
    item = event(raw_event("session.ended", event_id="e-1", session_id="s-unknown"))
    result = step(None, item, PACKAGED, Cause(event_id=item.event_id, type=item.type))
    assert result.decisions == ()
    assert not result.changed


def test_a_refused_tenant_leaves_nothing_stored() -> None:
    stored, decisions = run(PACKAGED, [raw_request("r-1", [("db/a", "prod")], tenant="nope")])
    assert brief(decisions) == [("deny", "unknown-tenant", "r-1")]
    assert stored is None


def test_live_grants_are_bounded() -> None:
    _, decisions = run(LIMITS, [raw_request(f"r-{n}", [("db/a", "prod")], t=n)
                                for n in range(3)])
    assert brief(decisions) == [("approve", "auto-approve", "r-0"),
                                ("approve", "auto-approve", "r-1"),
                                ("deny", "state-limit", "r-2")]


def test_tenants_per_subject_are_bounded() -> None:
    stored, decisions = run(LIMITS, [
        raw_request("r-1", [("db/a", "prod")], tenant="one"),
        raw_request("r-2", [("db/a", "prod")], tenant="two", t=1),
    ])
    assert brief(decisions) == [("approve", "auto-approve", "r-1"),
                                ("deny", "state-limit", "r-2")]
    assert stored is not None
    assert set(stored.tenants) == {"one"}


def test_remembered_pairs_are_bounded() -> None:
    seen = parse_policy('version = "t"\n[defaults.limits]\nmax_seen = 2\n'
                        '[defaults.baseline]\nnovel_workload = "off"\n')
    agent = {"id": "spiffe://x.example/a", "kind": "agent", "attested": True}
    _, decisions = run(seen, [
        raw_request(f"r-{n}", [(f"db/{n}", f"env-{n}")], t=n, event_id=f"e-{n}")
        | {"subject": agent} for n in range(3)])
    assert brief(decisions) == [("approve", "auto-approve", "r-0"),
                                ("approve", "auto-approve", "r-1"),
                                ("deny", "state-limit", "r-2")]
