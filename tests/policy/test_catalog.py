"""Issue H, finding 4: a requester declares sensitivity, environment and roles. The policy's
resource catalog decides them; envs and roles compare normalised; repeated ids merge."""

from __future__ import annotations

from importlib import resources
from typing import Any

from policy import step
from schemas.decisions import Cause, Decision
from schemas.policy import LoadedPolicy, parse_policy
from schemas.state import StoredSubject
from tests.factories import event, raw_request

PACKAGED = parse_policy(resources.files("policy").joinpath("default.toml").read_text())

CATALOG = parse_policy("""
version = "test-catalog"

[defaults.catalog]
unknown = "escalate"
unknown_from = "medium"

[[defaults.catalog.resources]]
id = "db/orders"
env = "prod"
sensitivity = "critical"
owner = "team-orders"

[[defaults.catalog.resources]]
glob = "pay/ledger*"
env = "prod"
sensitivity = "low"
roles = ["payments-approver"]

[[defaults.catalog.resources]]
glob = "pay/*"
env = "prod"
sensitivity = "low"
roles = ["Payments-Submitter"]

[[defaults.exclusive]]
name = "prod-vs-research"
envs = ["prod", "research"]

[[defaults.exclusive]]
name = "payments-duties"
roles = ["payments-approver", "payments-submitter"]
""")


def run(policy: LoadedPolicy, raws: list[dict[str, Any]]
        ) -> tuple[StoredSubject | None, list[Decision]]:
    stored: StoredSubject | None = None
    decisions: list[Decision] = []
    for raw in raws:
        item = event(raw)
        result = step(stored, item, policy, Cause(event_id=item.event_id, type=item.type))
        if result.changed:
            stored = result.stored if result.stored.tenants else None
        decisions.extend(result.decisions)
    return stored, decisions


def brief(decisions: list[Decision]) -> list[tuple[str, str, str | None]]:
    return [(d.action, d.rule.id, d.request_id) for d in decisions]


def test_claimed_low_does_not_lower_a_catalogued_critical_resource() -> None:
    critical = {"id": "db/orders", "env": "prod", "sensitivity": "critical"}
    low = {"id": "db/orders", "env": "prod", "sensitivity": "low"}
    _, decisions = run(CATALOG, [
        raw_request("r-1", [critical], ttl_s=28800, ticket="OPS-1"),
        raw_request("r-2", [low], t=1, ttl_s=28800, ticket="OPS-1"),
    ])
    assert brief(decisions) == [("escalate", "step-up", "r-1"), ("escalate", "step-up", "r-2")]


def test_a_claim_stricter_than_the_catalog_counts() -> None:
    high = {"id": "pay/batch", "env": "prod", "sensitivity": "high"}
    _, decisions = run(CATALOG, [raw_request("r-1", [high], ticket="OPS-1")])
    assert brief(decisions) == [("escalate", "step-up", "r-1")]


def test_an_env_claim_differing_from_the_catalog_is_denied() -> None:
    staging = {"id": "db/orders", "env": "staging", "sensitivity": "critical"}
    _, decisions = run(CATALOG, [raw_request("r-1", [staging], ticket="OPS-1")])
    assert brief(decisions) == [("deny", "resource-mismatch", "r-1")]
    assert "db/orders is in env prod, not staging" in decisions[0].reason


def test_a_roles_claim_differing_from_the_catalog_is_denied() -> None:
    claimed = {"id": "pay/batch", "env": "prod", "sensitivity": "low", "roles": ["viewer"]}
    _, decisions = run(CATALOG, [raw_request("r-1", [claimed])])
    assert brief(decisions) == [("deny", "resource-mismatch", "r-1")]


def test_leaving_roles_out_does_not_escape_role_exclusion() -> None:
    submitter = {"id": "pay/batch", "env": "prod", "sensitivity": "low",
                 "roles": ["payments-submitter"]}
    no_roles = {"id": "pay/ledger", "env": "prod", "sensitivity": "low"}
    _, decisions = run(CATALOG, [raw_request("r-1", [submitter]),
                                 raw_request("r-2", [no_roles], t=10)])
    assert brief(decisions) == [("approve", "auto-approve", "r-1"),
                                ("approve", "auto-approve", "r-2"),
                                ("revoke", "exclusive-environments", "r-1")]


def test_unknown_resources_escalate_from_the_threshold_up() -> None:
    medium = {"id": "db/unlisted", "env": "prod", "sensitivity": "medium"}
    low = {"id": "db/unlisted", "env": "prod", "sensitivity": "low"}
    _, decisions = run(CATALOG, [raw_request("r-1", [medium]),
                                 raw_request("r-2", [low], t=1)])
    assert brief(decisions) == [("escalate", "resource-unknown", "r-1"),
                                ("approve", "auto-approve", "r-2")]


def test_unknown_resources_denied_when_the_catalog_says_deny() -> None:
    strict = parse_policy('version = "t"\n[defaults.catalog]\nunknown = "deny"\n'
                          '[[defaults.catalog.resources]]\nid = "db/a"\nenv = "prod"\n')
    _, decisions = run(strict, [raw_request("r-1", [("db/a", "prod")]),
                                raw_request("r-2", [("db/b", "prod")], t=1)])
    assert brief(decisions) == [("approve", "auto-approve", "r-1"),
                                ("deny", "resource-unknown", "r-2")]


def test_differently_spelt_envs_do_not_escape_the_exclusion() -> None:
    prod = {"id": "db/a", "env": "prod", "sensitivity": "low"}
    research = {"id": "db/b", "env": "Research", "sensitivity": "low"}
    spaced = {"id": "db/c", "env": "research ", "sensitivity": "low"}
    _, decisions = run(PACKAGED, [raw_request("r-1", [prod]),
                                  raw_request("r-2", [research], t=1)])
    assert brief(decisions)[1:] == [("approve", "auto-approve", "r-2"),
                                    ("revoke", "exclusive-environments", "r-1")]
    _, decisions = run(PACKAGED, [raw_request("r-3", [prod, spaced])])
    assert brief(decisions) == [("deny", "exclusive-environments", "r-3")]


def test_repeated_resource_ids_are_merged() -> None:
    same = [{"id": "db/a", "env": "prod", "sensitivity": "low"}] * 255 + [
        {"id": "db/a", "env": "prod", "sensitivity": "low", "roles": ["reader"]}]
    stored, decisions = run(PACKAGED, [raw_request("r-1", same)])
    assert brief(decisions) == [("approve", "auto-approve", "r-1")]
    assert list(decisions[0].resources) == ["db/a"]
    assert stored is not None
    (grant,) = stored.tenants["default"].grants
    assert [(r.id, r.roles) for r in grant.resources] == [("db/a", ("reader",))]


def test_one_id_claimed_in_two_envs_is_denied() -> None:
    _, decisions = run(PACKAGED, [raw_request("r-1", [("db/a", "prod"), ("db/a", "staging")])])
    assert brief(decisions) == [("deny", "resource-mismatch", "r-1")]


def test_policy_names_are_normalised() -> None:
    loaded = parse_policy('version = "t"\n[[defaults.exclusive]]\nname = "g"\n'
                          'envs = [" Prod", "RESEARCH"]\n')
    (group,) = loaded.policy.defaults.exclusive
    assert group.envs == ("prod", "research")
