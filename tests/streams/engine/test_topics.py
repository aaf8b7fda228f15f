"""Topic binding: each event type is decided only from the input topic it belongs on."""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from importlib import resources

import orjson
import pytest

from schemas.errors import InputError
from schemas.events import InputEvent
from schemas.policy import parse_policy
from streams.engine.plan import Record, plan_batch, stored_keys
from streams.engine.replay import BadLine, Replay, replay_lines
from streams.engine.topics import EVENT_TOPICS, WRONG_TOPIC, InputTopics
from tests.factories import event, raw_event, raw_request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
TOPICS = InputTopics(requests="jit.requests", sessions="jit.sessions")


def _types() -> set[str]:
    union = typing.get_args(InputEvent)[0]
    return {typing.get_args(model.model_fields["type"].annotation)[0]
            for model in typing.get_args(union)}


def test_every_event_type_is_bound_to_the_topic_the_contract_names() -> None:
    assert set(EVENT_TOPICS) == _types()
    assert {kind for kind, home in EVENT_TOPICS.items() if home == "requests"} == {
        "request.created", "request.reviewed", "request.withdrawn", "lock.released",
        "request.extension_requested"}  # issue J
    assert {kind for kind, home in EVENT_TOPICS.items() if home == "sessions"} == {
        "session.started", "session.activity", "session.ended", "task.completed"}
    assert TOPICS.home_of("request.created") == "jit.requests"
    assert TOPICS.home_of("task.completed") == "jit.sessions"


def test_an_event_on_another_topic_is_refused_naming_type_and_topics() -> None:
    created = event(raw_request("r-1", [("db", "prod")]))
    assert TOPICS.check(created, "jit.requests") is created
    with pytest.raises(InputError) as refused:
        TOPICS.check(created, "jit.sessions")
    assert refused.value.error_class == WRONG_TOPIC == "wrong-topic"
    assert "request.created" in refused.value.message
    assert "'jit.sessions'" in refused.value.message
    assert "'jit.requests'" in refused.value.message
    with pytest.raises(InputError):
        TOPICS.check(created, "some.other.topic")


def _plan(records: list[Record]):  # type: ignore[no-untyped-def]
    return plan_batch(records, dict.fromkeys(stored_keys(records)), POLICY,
                      input_topics=TOPICS, decisions_topic="jit.decisions",
                      deadletter_topic="jit.deadletter", max_event_bytes=65536,
                      now=lambda: datetime(2026, 11, 23, 12, tzinfo=UTC))


def test_a_request_on_the_sessions_topic_is_a_dead_letter_and_not_decided() -> None:
    smuggled = orjson.dumps(raw_request("r-1", [("db", "prod")]))
    good = orjson.dumps(raw_request("r-2", [("db", "prod")], t=1))
    plan = _plan([Record("jit.sessions", 0, 5, b"alice", smuggled),
                  Record("jit.requests", 0, 9, b"alice", good)])
    assert [out.topic for out in plan.outbound] == ["jit.deadletter", "jit.decisions"]
    dead = plan.outbound[0]
    assert (dead.key, dead.value) == (b"alice", smuggled)
    headers = dict(dead.headers)
    assert headers["error.class"] == b"wrong-topic"
    assert headers["source.topic"] == b"jit.sessions"
    assert b"request.created" in headers["error.message"]
    assert orjson.loads(plan.outbound[1].value)["request_id"] == "r-2"  # type: ignore[arg-type]
    assert plan.dead_letters == 1
    assert plan.decisions == 1


def test_session_events_on_the_requests_topic_are_dead_letters_too() -> None:
    started = orjson.dumps(raw_event("session.started", event_id="e-s", session_id="s-1",
                                     request_id="r-1", resource="db"))
    plan = _plan([Record("jit.requests", 0, 0, b"alice", started)])
    assert [dict(out.headers)["error.class"] for out in plan.outbound] == [b"wrong-topic"]


def test_a_file_has_no_topics_so_simulate_accepts_every_type() -> None:
    lines = [orjson.dumps(raw_request("r-1", [("db", "prod")])),
             orjson.dumps(raw_event("task.completed", event_id="e-t", t=1, request_id="r-1"))]
    items = list(replay_lines(lines, POLICY, Replay(), 65536))
    assert not [item for item in items if isinstance(item, BadLine)]
    assert len(items) == 2
