"""Label values stay bounded whatever an event sender writes (issue K)."""

from __future__ import annotations

from importlib import resources

from prometheus_client import generate_latest

from schemas.policy import parse_policy
from streams.observe.metrics import (
    AUDIT_SINK,
    NOTARY,
    OTHER,
    WORKER,
    action_label,
    event_type_label,
    rule_label,
    tenant_label,
)

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())


def test_tenants_are_labelled_only_as_the_policy_names_them() -> None:
    assert tenant_label("default", POLICY) == "default"
    assert tenant_label("acme-evil-" + "x" * 40, POLICY) == OTHER
    assert tenant_label(None, POLICY) == OTHER


def test_rules_actions_and_types_are_labelled_only_as_defined() -> None:
    assert rule_label("ttl-max") == "ttl-max"
    assert rule_label("made-up-by-an-attacker") == OTHER
    assert action_label("revoke") == "revoke"
    assert action_label("grant-everything") == OTHER
    assert event_type_label("request.created") == "request.created"
    assert event_type_label("clock.tick") == "clock.tick"
    assert event_type_label({"type": "x"}) == OTHER


def test_each_process_exposes_its_own_metrics_only() -> None:
    worker, sink, notary = (generate_latest(registry).decode()
                            for registry in (WORKER, AUDIT_SINK, NOTARY))
    assert "jitwatch_decisions_total" in worker
    assert "jitwatch_audit" not in worker
    assert "jitwatch_notary" not in worker
    assert "jitwatch_audit_lag_messages" in sink
    assert "jitwatch_decisions" not in sink
    assert "jitwatch_notary_checkpoint_age_seconds" in notary
    assert all("jitwatch_ready" in page for page in (worker, sink, notary))
    assert all("_created" not in page for page in (worker, sink, notary))
