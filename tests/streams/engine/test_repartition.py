"""Canonical partition (issue H, finding 15): a record is decided only on its subject's
partition; one that landed elsewhere is forwarded once, and decided as the original."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson
import pytest

from schemas.errors import InputError
from schemas.policy import parse_policy
from streams.engine.codec import decode_event, subject_key
from streams.engine.partitioner import partition_of
from streams.engine.plan import LOG_APPEND_TIME, BatchPlan, Record, plan_batch, stored_keys
from streams.engine.repartition import INVALID_FORWARD, WRONG_PARTITION, Repartition
from streams.engine.topics import InputTopics
from tests.factories import at, raw_request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
TOPICS = InputTopics(requests="jit.requests", sessions="jit.sessions")
REPARTITION = Repartition("jitwatch-repartition", 8)
SUBJECT = "dev@example.com"
OWNER = partition_of(SUBJECT.encode(), 8)
ELSEWHERE = (OWNER + 3) % 8
BROKER_S = 5.0
BROKER_MS = str(round(at(BROKER_S).timestamp() * 1000)).encode()


def _raw(request_id: str = "r-1", subject: str = SUBJECT) -> dict[str, Any]:
    return raw_request(request_id, [("db/orders", "dev")], subject=subject)


def _input(partition: int, raw: dict[str, Any], *, offset: int = 41,
           topic: str = "jit.requests", key: bytes | None = None) -> Record:
    return Record(topic, partition, offset, key or raw["subject"]["id"].encode(),
                  orjson.dumps(raw), timestamp=at(BROKER_S).timestamp(),
                  timestamp_type=LOG_APPEND_TIME)


def _forwarded(partition: int, raw: dict[str, Any], *, topic: str = "jit.requests",
               headers: list[tuple[str, bytes]] | None = None) -> Record:
    # As the broker gives it back: its own (later) time, which must not count.
    return Record(REPARTITION.topic, partition, 7, raw["subject"]["id"].encode(),
                  orjson.dumps(raw), timestamp=at(BROKER_S + 60).timestamp(),
                  timestamp_type=LOG_APPEND_TIME, headers=headers if headers is not None else [
                      ("origin.topic", topic.encode()), ("origin.partition", b"2"),
                      ("origin.offset", b"41"), ("origin.timestamp", BROKER_MS)])


def _plan(records: list[Record], store: dict[tuple[int, bytes], bytes] | None = None
          ) -> BatchPlan:
    store = store or {}
    return plan_batch(records, {where: store.get(where) for where in stored_keys(records)},
                      POLICY, input_topics=TOPICS, decisions_topic="jit.decisions",
                      deadletter_topic="jit.deadletter", max_event_bytes=65536,
                      now=lambda: datetime(2026, 11, 23, 12, tzinfo=UTC),
                      require_broker_time=True, repartition=REPARTITION)


def test_a_record_on_another_partition_is_forwarded_once_and_not_decided() -> None:
    plan = _plan([_input(ELSEWHERE, _raw())])
    assert plan.decisions == 0
    assert plan.dead_letters == 0
    assert plan.forwarded == 1
    assert plan.writes == {}
    assert plan.deadlines == {}
    [forward] = plan.outbound
    assert (forward.topic, forward.partition, forward.source) == (REPARTITION.topic, OWNER, 0)
    assert forward.key == SUBJECT.encode()
    assert forward.value == orjson.dumps(_raw())
    assert forward.headers == [("origin.topic", b"jit.requests"),
                               ("origin.partition", str(ELSEWHERE).encode()),
                               ("origin.offset", b"41"), ("origin.timestamp", BROKER_MS)]
    # Done with on its partition, for the expiry gate.
    assert plan.decided == [("jit.requests", ELSEWHERE, 41, at(BROKER_S))]


def test_the_owner_is_chosen_by_the_canonical_subject_key() -> None:
    spelled = "Dev\u200b@Example.com"
    raw = _raw(subject=spelled)
    landed = partition_of(spelled.encode(), 8)  # where a murmur2 producer puts the raw key
    assert landed != OWNER  # (so the test means something)
    [forward] = _plan([_input(landed, raw)]).outbound
    assert (forward.topic, forward.partition) == (REPARTITION.topic, OWNER)


def test_a_record_on_its_own_partition_is_decided_there() -> None:
    plan = _plan([_input(OWNER, _raw())])
    assert plan.forwarded == 0
    assert plan.decisions == 1
    assert [out.topic for out in plan.outbound] == ["jit.decisions"]


def test_a_forwarded_record_is_decided_with_its_original_cause_and_broker_time() -> None:
    plan = _plan([_forwarded(OWNER, _raw())])
    assert plan.forwarded == 0
    assert plan.decisions == 1
    decision = orjson.loads(plan.outbound[0].value or b"")
    assert decision["action"] == "approve"
    assert decision["cause"] == {"event_id": "e-r-1", "type": "request.created",
                                 "topic": "jit.requests", "partition": 2, "offset": 41}
    assert decision["at"] == "2026-11-23T10:00:05Z"  # the original broker time, not +60 s
    assert list(plan.writes) == [subject_key(SUBJECT)]
    assert plan.writes[subject_key(SUBJECT)].source == 0  # stored on the owner's partition
    # The gate counts the repartition topic's own offset, and its own broker time (the
    # forward's, which rises with its offsets; the original's does not: issue I).
    assert plan.decided == [(REPARTITION.topic, OWNER, 7, at(BROKER_S + 60))]


def test_a_duplicate_forward_is_dropped_by_the_redelivery_memory() -> None:
    first = _plan([_forwarded(OWNER, _raw())])
    store = {(OWNER, write.key): write.value for write in first.writes.values()
             if write.value is not None}
    again = _plan([_forwarded(OWNER, _raw())], store)
    assert again.decisions == 0


def test_a_forwarded_record_from_the_wrong_topic_is_still_a_wrong_topic_dead_letter() -> None:
    plan = _plan([_forwarded(OWNER, _raw(), topic="jit.sessions")])
    assert plan.decisions == 0
    [dead] = plan.outbound
    headers = dict(dead.headers)
    assert (dead.topic, headers["error.class"]) == ("jit.deadletter", b"wrong-topic")
    # Named by the producer's record, not the worker's copy of it.
    assert (headers["source.topic"], headers["source.partition"],
            headers["source.offset"]) == (b"jit.sessions", b"2", b"41")


def test_a_forwarded_record_still_on_the_wrong_partition_is_a_dead_letter_not_a_loop() -> None:
    plan = _plan([_forwarded(ELSEWHERE, _raw())])
    assert plan.forwarded == 0
    assert plan.decisions == 0
    [dead] = plan.outbound
    assert dead.topic == "jit.deadletter"
    assert dict(dead.headers)["error.class"] == WRONG_PARTITION.encode() == b"wrong-partition"
    assert plan.decided == [(REPARTITION.topic, ELSEWHERE, 7, None)]


@pytest.mark.parametrize("headers", [[], [("origin.topic", b"jit.requests")],
                                     [("origin.topic", b"jit.requests"),
                                      ("origin.partition", b"two"), ("origin.offset", b"1")]])
def test_a_repartition_record_without_origin_headers_is_a_dead_letter(
        headers: list[tuple[str, bytes]]) -> None:
    [dead] = _plan([_forwarded(OWNER, _raw(), headers=headers)]).outbound
    assert dict(dead.headers)["error.class"] == INVALID_FORWARD.encode()


def test_origin_headers_on_an_input_topic_are_ignored() -> None:
    # Only the worker writes the repartition topic; on an input topic they are a claim.
    record = _input(OWNER, _raw())
    claimed = Record(record.topic, record.partition, record.offset, record.key, record.value,
                     record.timestamp, record.timestamp_type,
                     headers=[("origin.topic", b"jit.requests"), ("origin.timestamp", b"0")])
    decision = orjson.loads(_plan([claimed]).outbound[0].value or b"")
    assert decision["cause"]["offset"] == 41
    assert decision["at"] == "2026-11-23T10:00:05Z"


def test_a_forwarded_record_without_broker_time_is_untrusted_in_the_worker() -> None:
    headers = [("origin.topic", b"jit.requests"), ("origin.partition", b"2"),
               ("origin.offset", b"41")]
    [dead] = _plan([_forwarded(OWNER, _raw(), headers=headers)]).outbound
    assert dict(dead.headers)["error.class"] == b"clock-untrusted"


def test_the_record_key_may_be_any_spelling_of_the_subject() -> None:
    value = orjson.dumps(_raw(subject="Dev@example.com"))
    assert decode_event(b"dev\xe2\x80\x8b@EXAMPLE.com", value, 65536).subject.id == \
        "Dev@example.com"
    with pytest.raises(InputError) as refused:
        decode_event(b"eve@example.com", value, 65536)
    assert refused.value.error_class == "key-mismatch"
    with pytest.raises(InputError):
        decode_event(b"\xff", orjson.dumps(_raw(subject="\ufffd")), 65536)


def test_spellings_of_one_subject_share_one_state_in_a_batch() -> None:
    records = [_input(OWNER, _raw("r-1")),
               _input(OWNER, _raw("r-2", subject="DEV@example.com"), offset=42),
               _input(OWNER, _raw("r-3", subject="dev\u200b@example.com"), offset=43)]
    plan = _plan(records)
    assert list(plan.writes) == [b"dev@example.com"]
    subjects = [orjson.loads(out.value or b"")["subject"]["id"] for out in plan.outbound]
    assert subjects == ["dev@example.com", "DEV@example.com", "dev\u200b@example.com"]


def test_a_forwarded_request_decided_after_its_session_still_covers_it() -> None:
    """An honest request sent with librdkafka's partitioner (another partition) is decided
    after the gateway's session on it, which came straight to the owner: the grant runs from
    the request's own broker time, so the session (begun after it) is covered, as simulate
    decides the same records in broker-time order (the second adversarial review)."""
    raw = _raw()
    session = {"type": "session.started", "event_id": "gw-1", "at": at(BROKER_S + 2),
               "tenant": "default", "subject": {"id": SUBJECT}, "session_id": "s-1",
               "request_id": "r-1", "resource": "db/orders"}
    store: dict[tuple[int, bytes], bytes] = {}
    started = Record("jit.sessions", OWNER, 3, SUBJECT.encode(), orjson.dumps(session),
                     timestamp=at(BROKER_S + 2).timestamp(), timestamp_type=LOG_APPEND_TIME)
    activity = {**session, "type": "session.activity", "event_id": "gw-2",
                "at": at(BROKER_S + 4), "action": "SELECT 1"}
    del activity["request_id"]
    acted = Record("jit.sessions", OWNER, 4, SUBJECT.encode(), orjson.dumps(activity),
                   timestamp=at(BROKER_S + 4).timestamp(), timestamp_type=LOG_APPEND_TIME)
    first = _plan([_input(ELSEWHERE, raw), started, acted], store)
    store.update({(OWNER, write.key): write.value for write in first.writes.values()
                  if write.value is not None})
    second = _plan([_forwarded(OWNER, raw)], store)
    decided = [orjson.loads(o.value) for o in [*first.outbound, *second.outbound]
               if o.topic == "jit.decisions"]
    assert [(d["action"], d["rule"]["id"]) for d in decided] == [("approve", "auto-approve")]
