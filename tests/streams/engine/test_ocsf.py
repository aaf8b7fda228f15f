"""Every decision of every golden replay, mapped to OCSF, validates against OCSF 1.8.0's
JSON Schema (the ``ocsf-json-schema`` package's copy), and the mapping says what the
contract's table says."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import pytest
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from schemas.decisions import Decision
from streams.engine.decision_lines import read_records
from streams.engine.ocsf import OCSF_VERSION, to_ocsf
from tests.paths import REPO

_CLASSES = {3005: "user_access", 3001: "account_change"}


@cache
def _validator(class_uid: int) -> jsonschema.Draft202012Validator:
    embedded = OcsfJsonSchemaEmbedded(get_ocsf_schema(OCSF_VERSION))
    schema = embedded.get_class_schema(_CLASSES[class_uid], ["security_control"])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def golden_decisions() -> list[Decision]:
    """Every decision of every golden case (all actions, rules and causes they hold)."""
    found: list[Decision] = []
    for path in sorted((REPO / "tests" / "golden").glob("*/decisions.jsonl")):
        with path.open("rb") as handle:
            found += [r for r in read_records(handle) if isinstance(r, Decision)]
    return found


def _valid(event: dict[str, Any]) -> None:
    errors = sorted(_validator(event["class_uid"]).iter_errors(event), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_every_golden_decision_validates() -> None:
    decisions = golden_decisions()
    assert {d.action for d in decisions} == {"approve", "deny", "escalate", "revoke", "lock",
                                             "unlock"}
    for decision in decisions:
        _valid(to_ocsf(decision, "0.1.0"))


@pytest.mark.parametrize(("action", "class_uid", "activity_id", "action_id", "disposition_id",
                          "status_id"), [
    ("approve", 3005, 1, 1, 1, 1),
    ("deny", 3005, 1, 2, 2, 2),
    ("escalate", 3005, 1, 99, 14, 99),
    ("revoke", 3005, 2, 4, 24, 1),
    ("lock", 3001, 9, 2, 2, 1),
    ("unlock", 3001, 12, 1, 9, 1),
])
def test_mapping_table(action: str, class_uid: int, activity_id: int, action_id: int,
                       disposition_id: int, status_id: int) -> None:
    decision = next(d for d in golden_decisions()
                    if d.action == action and (d.resources or action.endswith("lock")))
    event = to_ocsf(decision, "0.1.0")
    assert (event["class_uid"], event["activity_id"], event["action_id"],
            event["disposition_id"], event["status_id"]) == (
        class_uid, activity_id, action_id, disposition_id, status_id)
    assert event["type_uid"] == class_uid * 100 + activity_id
    assert event["metadata"]["uid"] == decision.decision_id
    assert event["metadata"]["version"] == OCSF_VERSION
    assert event["policy"] == {
        "uid": decision.rule.id, "name": decision.rule.id, "desc": decision.rule.description,
        "version": decision.policy.version, "is_applied": True,
        "data": {"sha256": decision.policy.sha256}}
    assert event["user"]["uid"] == decision.subject.id
    if class_uid == 3005:
        assert [r["uid"] for r in event["resources"] if r["type"] == "resource"] == list(
            decision.resources)
        assert event["privileges"] == list(decision.resources)
    else:  # Account Change has no resources: what a lock ends is in unmapped.targets
        assert event["unmapped"]["targets"] == list(decision.targets)
    assert event["time"] == int(decision.at.timestamp() * 1000)


def test_post_review_done_approve_grants_nothing() -> None:
    done = next(d for d in golden_decisions()
                if d.rule.id == "post-review-done" and d.action == "approve")
    event = to_ocsf(done, "0.1.0")
    assert (event["activity_id"], event["disposition_id"], event["privileges"]) == (99, 8, [])
    _valid(event)


def test_break_glass_is_at_least_medium() -> None:
    glass = next(d for d in golden_decisions() if d.post_review)
    assert to_ocsf(glass, "0.1.0")["severity_id"] >= 3


def test_the_subject_is_the_actor_only_of_what_it_sent() -> None:
    decisions = golden_decisions()
    asked = next(d for d in decisions if d.cause.type == "request.created")
    tick = next(d for d in decisions if d.cause.type == "clock.tick")
    assert to_ocsf(asked, "0.1.0")["actor"]["user"]["uid"] == asked.subject.id
    assert to_ocsf(tick, "0.1.0")["actor"] == {"app_name": "jitwatch"}
