"""Input events against the contract text itself, minimal events, limits and refusals.

Complements ``test_events.py``: the examples here are read from ``schemas/CONTRACT.md`` (the
shipped copy of the wire contract), so a change of the contract text is noticed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.decisions import Decision
from schemas.events import (
    INPUT_EVENT,
    LockReleased,
    RequestCreated,
    RequestReviewed,
    RequestWithdrawn,
    SessionActivity,
    SessionEnded,
    SessionStarted,
    TaskCompleted,
)
from tests.paths import REPO

CONTRACT = (REPO / "schemas" / "CONTRACT.md").read_text()
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", CONTRACT, re.S)]
[EVENT_EXAMPLE] = [example for example in EXAMPLES if "type" in example]
[DECISION_EXAMPLE] = [example for example in EXAMPLES if "decision_id" in example]
RESOURCE_EXAMPLE = {"id": "db/orders", "env": "prod", "sensitivity": "high",
                    "roles": ["db-writer"]}
assert json.dumps(RESOURCE_EXAMPLE) in CONTRACT, "the contract's resource example moved"

COMMON = {"event_id": "e-1", "at": "2026-11-23T10:00:00Z", "subject": {"id": "alice"}}
MINIMAL: dict[str, tuple[dict[str, Any], type]] = {
    "request.created": ({"request_id": "r-1", "resources": [{"id": "db", "env": "prod"}]},
                        RequestCreated),
    "request.reviewed": ({"request_id": "r-1", "reviewer": {"id": "bob"},
                          "outcome": "denied"}, RequestReviewed),
    "request.withdrawn": ({"request_id": "r-1"}, RequestWithdrawn),
    "lock.released": ({"target": {"request_id": "r-1"}}, LockReleased),
    "session.started": ({"session_id": "s-1", "request_id": "r-1", "resource": "db"},
                        SessionStarted),
    "session.activity": ({"session_id": "s-1", "resource": "db", "action": "SELECT"},
                         SessionActivity),
    "session.ended": ({"session_id": "s-1"}, SessionEnded),
    "task.completed": ({"request_id": "r-1"}, TaskCompleted),
}


def minimal(kind: str = "request.created", **change: Any) -> dict[str, Any]:
    raw = {"type": kind, **COMMON, **MINIMAL[kind][0], **change}
    return {key: value for key, value in raw.items() if value is not None}


def refusal(raw: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The locations pydantic names for a refused event, without the union tag."""
    with pytest.raises(ValidationError) as caught:
        INPUT_EVENT.validate_json(json.dumps(raw))
    return [tuple(error["loc"][1:]) for error in caught.value.errors()]


def test_contract_event_example_completed_with_request_fields_validates() -> None:
    raw = {**EVENT_EXAMPLE, "request_id": "r-9", "resources": [RESOURCE_EXAMPLE]}
    parsed = INPUT_EVENT.validate_json(json.dumps(raw))
    assert isinstance(parsed, RequestCreated)
    assert (parsed.event_id, parsed.tenant) == ("e-7f3a", "acme")
    assert parsed.at == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert parsed.subject.model_dump() == {**EVENT_EXAMPLE["subject"]}
    assert parsed.resources[0].model_dump() == {**RESOURCE_EXAMPLE, "roles": ("db-writer",)}
    assert (parsed.ttl_s, parsed.reason, parsed.ticket, parsed.break_glass) == (
        None, None, None, False)


def test_contract_event_example_lacks_only_the_request_fields() -> None:
    assert sorted(refusal(EVENT_EXAMPLE)) == [("request_id",), ("resources",)]


def test_contract_decision_example_validates_and_round_trips() -> None:
    decision = Decision.model_validate(DECISION_EXAMPLE)
    assert decision.emitted_at == datetime(2026, 11, 23, 10, 5, 0, 4000, tzinfo=UTC)
    assert decision.state.before.active_resources == 4
    dumped = json.loads(decision.model_dump_json(by_alias=True))
    assert Decision.model_validate(dumped) == decision
    assert {key: dumped[key] for key in DECISION_EXAMPLE if key != "emitted_at"} == {
        key: value for key, value in DECISION_EXAMPLE.items() if key != "emitted_at"}
    assert dumped["post_review"] is False


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_every_type_validates_from_a_minimal_example(kind: str) -> None:
    parsed = INPUT_EVENT.validate_json(json.dumps(minimal(kind)))
    assert type(parsed) is MINIMAL[kind][1]
    assert (parsed.type, parsed.tenant, parsed.subject.kind) == (kind, "default", "human")


@pytest.mark.parametrize("kind", sorted(MINIMAL))
@pytest.mark.parametrize("name", ["event_id", "at", "subject", "type"])
def test_every_type_requires_the_common_fields(kind: str, name: str) -> None:
    raw = minimal(kind)
    del raw[name]
    with pytest.raises(ValidationError) as caught:
        INPUT_EVENT.validate_python(raw)
    if name != "type":
        assert [error["loc"] for error in caught.value.errors()] == [(kind, name)]


@pytest.mark.parametrize(("change", "where"), [
    ({"event_id": None}, ("event_id",)),
    ({"event_id": ""}, ("event_id",)),
    ({"event_id": "e" * 129}, ("event_id",)),
    ({"at": "2026-11-23T10:00:00"}, ("at",)),
    ({"at": "2026-11-23"}, ("at",)),
    ({"at": "yesterday"}, ("at",)),
    ({"subject": {"id": "s" * 513}}, ("subject", "id")),
    ({"subject": {"id": ""}}, ("subject", "id")),
    ({"subject": {}}, ("subject", "id")),
    ({"tenant": "t" * 129}, ("tenant",)),
    ({"resources": [{"id": "db", "env": "prod", "sensitivity": "extreme"}]},
     ("resources", 0, "sensitivity")),
    ({"resources": [{"id": "db", "env": "prod", "sensitivity": "HIGH"}]},
     ("resources", 0, "sensitivity")),
    ({"resources": [{"id": "db", "env": "prod", "sensitivity": None}]},
     ("resources", 0, "sensitivity")),
])
def test_refusals_name_the_field(change: dict[str, Any], where: tuple[Any, ...]) -> None:
    """A top-level None drops the field; a nested one is sent as null."""
    assert where in refusal(minimal(**change))


def test_the_longest_ids_are_accepted() -> None:
    parsed = INPUT_EVENT.validate_python(minimal(event_id="e" * 128,
                                                 subject={"id": "s" * 512}))
    assert (len(parsed.event_id), len(parsed.subject.id)) == (128, 512)


@pytest.mark.parametrize("kind", ["grant.expire", "clock.tick", "Request.Created", "", 7])
def test_unknown_types_are_refused(kind: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        INPUT_EVENT.validate_python(minimal(type=kind))
    assert caught.value.errors()[0]["type"] in ("union_tag_invalid", "union_tag_not_found")


def test_unknown_fields_are_ignored_at_the_top_level_and_in_resources() -> None:
    raw = minimal(colour="blue", resources=[{"id": "db", "env": "prod", "zone": "eu"}])
    parsed = INPUT_EVENT.validate_json(json.dumps(raw))
    assert parsed == INPUT_EVENT.validate_python(minimal())
    assert not hasattr(parsed, "colour")


def test_unknown_subject_fields_are_refused() -> None:
    # Issue H (2026-12-06): every subject field is an identity claim; "team" is no field.
    with pytest.raises(ValidationError) as caught:
        INPUT_EVENT.validate_json(json.dumps(minimal(subject={"id": "alice", "team": "x"})))
    assert caught.value.errors()[0]["loc"][-2:] == ("subject", "team")


@pytest.mark.parametrize(("text", "utc"), [
    ("2026-11-23T12:00:00+02:00", datetime(2026, 11, 23, 10, tzinfo=UTC)),
    ("2026-11-23T04:30:00-05:30", datetime(2026, 11, 23, 10, tzinfo=UTC)),
    ("2026-11-24T01:00:00+15:00", datetime(2026, 11, 23, 10, tzinfo=UTC)),
    ("2026-11-23T10:00:00.250Z", datetime(2026, 11, 23, 10, 0, 0, 250_000, tzinfo=UTC)),
    ("2026-11-23T10:00:00+00:00", datetime(2026, 11, 23, 10, tzinfo=UTC)),
])
def test_times_are_normalised_to_utc(text: str, utc: datetime) -> None:
    for kind in ("request.created", "session.ended"):
        parsed = INPUT_EVENT.validate_python(minimal(kind, at=text))
        assert parsed.at == utc
        assert parsed.at.tzinfo is UTC


def test_the_contracts_notice_example_is_a_notice() -> None:
    """Issue J: the ``jit.notice/v1`` example of the contract validates as a Notice."""
    from schemas.notices import Notice

    [example] = [item for item in EXAMPLES if "notice_id" in item]
    notice = Notice.model_validate(example)
    assert (notice.kind, notice.subject.owner) == ("expiry-soon", "team-payments")
