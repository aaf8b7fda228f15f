"""The worker's metrics, counted at the edge from a planned batch Kafka acknowledged."""

from __future__ import annotations

from importlib import resources

import orjson

from schemas.policy import parse_policy
from streams.engine.codec import encode_tick
from streams.engine.plan import LOG_APPEND_TIME, Record, plan_batch
from streams.engine.topics import InputTopics
from streams.observe.metrics import WORKER
from streams.settings import TopicSettings
from streams.worker.observe import PolicyState, record_batch
from tests.factories import at, raw_request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
TOPICS = TopicSettings()


def _value(name: str, **labels: str) -> float:
    return WORKER.get_sample_value(name, labels) or 0.0


def _plan(records: list[Record], stored: dict[tuple[int, bytes], bytes | None]):  # type: ignore[no-untyped-def]
    return plan_batch(records, stored, POLICY,
                      input_topics=InputTopics(TOPICS.topic_requests, TOPICS.topic_sessions),
                      decisions_topic=TOPICS.topic_decisions,
                      deadletter_topic=TOPICS.topic_deadletter, max_event_bytes=64 * 1024,
                      now=lambda: at(0), commands_topic=TOPICS.topic_commands)


def _record(topic: str, offset: int, key: bytes, value: bytes, broker_time: float) -> Record:
    return Record(topic, 0, offset, key, value, broker_time, LOG_APPEND_TIME)


def test_a_batch_counts_decisions_latency_types_and_dead_letters() -> None:
    approves = _value("jitwatch_decisions_total", action="approve", rule="auto-approve",
                      tenant="default")
    created = _value("jitwatch_events_in_total", topic=TOPICS.topic_requests,
                     type="request.created")
    unreadable = _value("jitwatch_events_in_total", topic=TOPICS.topic_requests,
                        type="unreadable")
    bad_json = _value("jitwatch_dead_letters_total", error_class="invalid-json")
    latencies = _value("jitwatch_decision_latency_seconds_count")
    within = _value("jitwatch_decision_latency_seconds_bucket", le="0.25")
    sent = at(0).timestamp()
    records = [
        _record(TOPICS.topic_requests, 0, b"alice",
                orjson.dumps(raw_request("r-1", [("db", "prod")], ttl_s=60)), sent),
        _record(TOPICS.topic_requests, 1, b"alice", b"{not json", sent),
    ]
    plan = _plan(records, {(0, b"alice"): None})
    record_batch(records, plan, sent + 0.2, POLICY, TOPICS, 64 * 1024)
    assert _value("jitwatch_decisions_total", action="approve", rule="auto-approve",
                  tenant="default") == approves + 1
    assert _value("jitwatch_events_in_total", topic=TOPICS.topic_requests,
                  type="request.created") == created + 1
    assert _value("jitwatch_events_in_total", topic=TOPICS.topic_requests,
                  type="unreadable") == unreadable + 1
    assert _value("jitwatch_dead_letters_total", error_class="invalid-json") == bad_json + 1
    assert _value("jitwatch_decision_latency_seconds_count") == latencies + 1
    assert _value("jitwatch_decision_latency_seconds_bucket", le="0.25") == within + 1


def test_an_expiry_tick_is_late_by_its_acknowledgement_once_however_many_it_ends() -> None:
    requests = [_record(TOPICS.topic_requests, offset, b"bob", orjson.dumps(raw_request(
        request_id, [(resource, "prod")], subject="bob", ttl_s=60)), at(0).timestamp())
        for offset, (request_id, resource) in enumerate([("r-2", "db"), ("r-3", "cache")])]
    stored = _plan(requests, {(0, b"bob"): None}).writes[b"bob"].value
    deadline = at(60)
    tick = _record(TOPICS.topic_commands, 0, b"bob", encode_tick(deadline, b"bob", "default"),
                   deadline.timestamp() + 0.5)
    plan = _plan([tick], {(0, b"bob"): stored})
    assert [orjson.loads(out.value or b"")["action"] for out in plan.outbound] == ["revoke"] * 2
    count = _value("jitwatch_expiry_lateness_seconds_count")
    on_time = _value("jitwatch_expiry_lateness_seconds_bucket", le="0.75")
    late = _value("jitwatch_expiry_lateness_seconds_bucket", le="1.0")
    record_batch([tick], plan, deadline.timestamp() + 0.8, POLICY, TOPICS, 64 * 1024)
    assert _value("jitwatch_expiry_lateness_seconds_count") == count + 1
    assert _value("jitwatch_expiry_lateness_seconds_bucket", le="0.75") == on_time
    assert _value("jitwatch_expiry_lateness_seconds_bucket", le="1.0") == late + 1


def test_policy_state_shows_the_version_in_force_and_a_refusal_until_undone() -> None:
    state = PolicyState(POLICY)
    state.loaded(POLICY)
    refusals = _value("jitwatch_policy_reload_refusals_total")
    assert _value("jitwatch_policy_info", version=POLICY.ref.version,
                  sha256=POLICY.ref.sha256) == 1
    assert state.problem() is None
    state.refuse("not signed by a trusted signer")
    assert _value("jitwatch_policy_reload_refusals_total") == refusals + 1
    assert _value("jitwatch_policy_refused") == 1
    assert state.problem() == (f"the changed policy file was refused (not signed by a trusted "
                               f"signer); version {POLICY.ref.version} stays in force")
    state.loaded(POLICY)
    assert (state.problem(), _value("jitwatch_policy_refused")) == (None, 0)


def test_notices_sent_are_counted_and_never_as_decisions() -> None:
    """Issue J: a tick at a grant's notice time sends one notice (jitwatch_notices_sent)
    and no decision."""
    request = _record(TOPICS.topic_requests, 0, b"nia", orjson.dumps(raw_request(
        "r-4", [("db", "prod")], subject="nia", ttl_s=3600)), at(0).timestamp())
    stored = _plan([request], {(0, b"nia"): None}).writes[b"nia"].value
    moment = at(2700)  # before_expiry_s = [900] in the packaged policy
    tick = _record(TOPICS.topic_commands, 0, b"nia", encode_tick(moment, b"nia", "default"),
                   moment.timestamp() + 0.5)
    plan = plan_batch([tick], {(0, b"nia"): stored}, POLICY,
                      input_topics=InputTopics(TOPICS.topic_requests, TOPICS.topic_sessions),
                      decisions_topic=TOPICS.topic_decisions,
                      deadletter_topic=TOPICS.topic_deadletter, max_event_bytes=64 * 1024,
                      now=lambda: moment, commands_topic=TOPICS.topic_commands,
                      notices_topic=TOPICS.topic_notices)
    assert [out.topic for out in plan.outbound] == [TOPICS.topic_notices]
    sent = _value("jitwatch_notices_sent_total")
    count = _value("jitwatch_expiry_lateness_seconds_count")
    record_batch([tick], plan, moment.timestamp() + 0.8, POLICY, TOPICS, 64 * 1024)
    assert _value("jitwatch_notices_sent_total") == sent + 1
    assert _value("jitwatch_expiry_lateness_seconds_count") == count, "no decision, no revoke"
