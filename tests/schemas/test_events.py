"""Input events as the contract describes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import INPUT_EVENT, RequestCreated, SessionStarted
from tests.factories import raw_event, raw_request

CONTRACT_EXAMPLE = {
    "type": "request.created", "event_id": "e-7f3a", "at": "2026-11-23T10:00:00Z",
    "tenant": "acme",
    "subject": {"id": "spiffe://acme.example/ns/ci/sa/deployer", "kind": "workload",
                "issuer": "spiffe://acme.example", "attested": True, "owner": "team-payments"},
    "request_id": "r-9",
    "resources": [{"id": "db/orders", "env": "prod", "sensitivity": "high",
                   "roles": ["db-writer"]}],
    "ttl_s": 3600, "reason": "deploy", "ticket": "OPS-1",
}


def test_contract_example_validates() -> None:
    event = INPUT_EVENT.validate_python(CONTRACT_EXAMPLE)
    assert isinstance(event, RequestCreated)
    assert event.subject.kind == "workload"
    assert event.resources[0].roles == ("db-writer",)
    assert event.break_glass is False


@pytest.mark.parametrize("raw", [
    raw_event("request.reviewed", event_id="e", request_id="r", reviewer={"id": "bob"},
              outcome="approved"),
    raw_event("request.withdrawn", event_id="e", request_id="r"),
    raw_event("lock.released", event_id="e", target={"subject": "alice"}, by="ops"),
    raw_event("session.started", event_id="e", session_id="s", request_id="r", resource="db"),
    raw_event("session.activity", event_id="e", session_id="s", resource="db", action="read"),
    raw_event("session.ended", event_id="e", session_id="s"),
    raw_event("task.completed", event_id="e", request_id="r"),
])
def test_every_event_type_validates(raw: dict[str, Any]) -> None:
    assert INPUT_EVENT.validate_python(raw).type == raw["type"]


def test_defaults_follow_the_contract() -> None:
    raw = raw_request("r-1", [{"id": "db", "env": "prod"}])
    del raw["tenant"]
    raw["subject"] = {"id": "alice"}
    event = INPUT_EVENT.validate_python(raw)
    assert isinstance(event, RequestCreated)
    assert event.tenant == "default"
    assert event.subject.kind == "human"
    assert event.resources[0].sensitivity == "high", "missing sensitivity fails closed"


@pytest.mark.parametrize(("change", "field"), [
    ({"event_id": None}, "event_id"),
    ({"event_id": "x" * 129}, "event_id"),
    ({"at": "2026-11-23T10:00:00"}, "at"),
    ({"subject": {"id": "x" * 513}}, "subject.id"),
    ({"subject": {"id": "alice", "kind": "robot"}}, "subject.kind"),
    ({"resources": []}, "resources"),
    ({"resources": [{"id": "db", "env": "prod", "sensitivity": "extreme"}]}, "sensitivity"),
    ({"ttl_s": 0}, "ttl_s"),
])
def test_invalid_fields_are_named(change: dict[str, Any], field: str) -> None:
    raw = {**raw_request("r-1", [("db", "prod")]), **change}
    raw = {key: value for key, value in raw.items() if value is not None}
    with pytest.raises(ValidationError) as caught:
        INPUT_EVENT.validate_python(raw)
    assert field.split(".")[-1] in str(caught.value)


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValidationError):
        INPUT_EVENT.validate_python(raw_event("grant.expire", event_id="e"))


def test_unknown_fields_are_ignored_and_times_normalised_to_utc() -> None:
    raw = raw_event("session.started", event_id="e", session_id="s", request_id="r",
                    resource="db", extra_field={"x": 1})
    raw["at"] = "2026-11-23T12:00:00+02:00"
    event = INPUT_EVENT.validate_python(raw)
    assert isinstance(event, SessionStarted)
    assert event.at == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert event.at.tzinfo == UTC


@pytest.mark.parametrize(("change", "field"), [
    ({"at": 1795420800}, "at"),
    ({"subject": {"id": "alice", "attested": "yes"}}, "attested"),
    ({"break_glass": 1}, "break_glass"),
])
def test_loose_values_are_refused_not_coerced(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        INPUT_EVENT.validate_python({**raw_request("r-1", [("db", "prod")]), **change})
    assert field in str(caught.value)


@pytest.mark.parametrize(("subject", "field"), [
    ({"id": "alice", "knd": "workload"}, "knd"),
    ({"id": "alice", "kind": "workload", "atested": True}, "atested"),
    ({"id": "alice", "owner_team": "payments"}, "owner_team"),
])
def test_unknown_subject_fields_are_refused_by_name(subject: dict[str, Any], field: str) -> None:
    # Issue H: a misspelt identity claim must not fall back to its default (kind human).
    with pytest.raises(ValidationError) as caught:
        INPUT_EVENT.validate_python({**raw_request("r-1", [("db", "prod")]), "subject": subject})
    assert f"subject.{field}" in str(caught.value)


@pytest.mark.parametrize(("key", "meant"), [
    ("tennant", "tenant"), ("Tenant", "tenant"), ("tenat", "tenant"),
    ("break-glass", "break_glass"), ("ttl", "ttl_s"), ("resource_s", "resources"),
    ("request-id", "request_id"), ("evnt_id", "event_id"),
])
def test_misspelt_top_level_fields_are_refused_with_the_fix(key: str, meant: str) -> None:
    raw = raw_request("r-1", [("db", "prod")])
    raw[key] = raw.pop("tenant") if meant == "tenant" else "x"
    with pytest.raises(ValidationError) as caught:
        INPUT_EVENT.validate_python(raw)
    assert repr(key) in str(caught.value)
    assert f"did you mean {meant!r}" in str(caught.value)


@pytest.mark.parametrize("key", ["extra_field", "x_trace_id", "producer", "labels",
                                 "reviewer", "session_id"])
def test_extension_fields_far_from_every_documented_name_are_still_ignored(key: str) -> None:
    # Documented fields of other types ("reviewer" on a request) stay allowed and ignored.
    raw = {**raw_request("r-1", [("db", "prod")]), key: {"anything": 1}}
    assert isinstance(INPUT_EVENT.validate_python(raw), RequestCreated)


@pytest.mark.parametrize("tenant", ["ACME", "acme ", " acme", "Acme", "", "-acme", "acme_eu",
                                    "a" * 64, "acme\n", "acmé"])
def test_tenants_outside_the_pattern_are_refused(tenant: str) -> None:
    # Issue H: "ACME", "acme " and "acme" would get different policies and state.
    with pytest.raises(ValidationError) as caught:
        INPUT_EVENT.validate_python(raw_request("r-1", [("db", "prod")], tenant=tenant))
    assert "tenant" in str(caught.value)


@pytest.mark.parametrize("tenant", ["acme", "default", "team-7", "a", "0", "a" * 63])
def test_tenants_matching_the_pattern_are_accepted(tenant: str) -> None:
    assert INPUT_EVENT.validate_python(raw_request("r-1", [("db", "prod")],
                                                   tenant=tenant)).tenant == tenant
