"""Batch planning without a broker: the same core, bytes in and bytes out."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

import orjson
import pytest

from schemas.decisions import Decision
from schemas.policy import parse_policy
from streams.engine.plan import Record, plan_batch, stored_keys
from streams.engine.topics import InputTopics
from tests.factories import raw_request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
INPUT_TOPICS = InputTopics(requests="jit.requests", sessions="jit.sessions")
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _record(offset: int, raw: dict[str, object] | None, key: bytes | None = b"alice",
            value: bytes | None = None) -> Record:
    return Record("jit.requests", 0, offset, key,
                  value if value is not None else orjson.dumps(raw))


def _stored(records: list[Record], store: dict[bytes, bytes]
            ) -> dict[tuple[int, bytes], bytes | None]:
    # What the worker reads before planning: each (partition, key) of the batch.
    return {where: store.get(where[1]) for where in stored_keys(records)}


def _plan(records: list[Record], store: dict[bytes, bytes] | None = None):  # type: ignore[no-untyped-def]
    store = store or {}
    return plan_batch(
        records,
        _stored(records, store),
        POLICY,
        input_topics=INPUT_TOPICS,
        decisions_topic="jit.decisions",
        deadletter_topic="jit.deadletter",
        max_event_bytes=64 * 1024,
        now=lambda: NOW,
    )


def test_batch_threads_state_between_records_of_one_subject() -> None:
    records = [
        _record(offset, raw_request(f"r-{offset}", [(f"res-{offset}", "prod")], t=offset))
        for offset in range(4)
    ]
    plan = _plan(records)
    actions = [orjson.loads(out.value)["action"] for out in plan.outbound]  # type: ignore[arg-type]
    # The fourth resource pushes out the oldest grant.
    assert actions == ["approve", "approve", "approve", "approve", "revoke"]
    assert len(plan.writes) == 1  # one key: only its last value is stored
    assert plan.writes[b"alice"].source == 3


def test_bad_record_goes_to_dead_letter_and_the_rest_continue() -> None:
    records = [
        _record(0, None, value=b"{oops"),
        _record(1, raw_request("r-1", [("db", "prod")])),
        _record(2, None, key=None, value=b"{}"),
    ]
    plan = _plan(records)
    by_source = sorted((out.source, out.topic) for out in plan.outbound)
    assert by_source == [(0, "jit.deadletter"), (1, "jit.decisions"), (2, "jit.deadletter")]
    assert plan.dead_letters == 2
    # Dead letters count as decided for the expiry gate (found by tests/faults poison:
    # a partition ending in one held its last ticks for ever).
    assert sorted((offset, at is None) for _, _, offset, at in plan.decided) == [
        (0, True), (1, False), (2, True)]
    dead = next(out for out in plan.outbound if out.source == 0)
    assert dead.value == b"{oops"
    assert dict(dead.headers)["error.class"] == b"invalid-json"
    assert dict(dead.headers)["source.offset"] == b"0"


def test_unexpected_decoder_failure_is_a_dead_letter_and_the_rest_continue(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.engine.plan

    real = streams.engine.plan.decode_event

    def fragile(key: bytes | None, value: bytes | None, max_bytes: int) -> object:
        if value == b"{}":
            raise OverflowError("date value out of range")
        return real(key, value, max_bytes)

    monkeypatch.setattr(streams.engine.plan, "decode_event", fragile)
    plan = _plan([_record(0, None, value=b"{}"),
                  _record(1, raw_request("r-1", [("db", "prod")]))])
    assert sorted((out.source, out.topic) for out in plan.outbound) == [
        (0, "jit.deadletter"), (1, "jit.decisions")]
    dead = next(out for out in plan.outbound if out.source == 0)
    assert dict(dead.headers)["error.class"] == b"OverflowError"


def test_unreadable_state_is_a_dead_letter_never_an_approve() -> None:
    plan = _plan([_record(0, raw_request("r-1", [("db", "prod")]))],
                 store={b"alice": b"garbage"})
    assert [out.topic for out in plan.outbound] == ["jit.deadletter"]
    assert dict(plan.outbound[0].headers)["error.class"] == b"state-unreadable"
    assert plan.writes == {}


def test_a_failed_store_read_is_a_dead_letter_of_the_records_that_need_it() -> None:
    # The worker hands a read that raised to the planner as data: that subject's records
    # are dead letters with the error, the other subjects' are decided as usual.
    records = [_record(0, raw_request("r-1", [("db", "prod")])),
               _record(1, raw_request("r-2", [("db", "prod")], subject="bob"), key=b"bob")]
    stored: dict[tuple[int, bytes], bytes | Exception | None] = {
        (0, b"alice"): OSError("rocksdb: IO error"), (0, b"bob"): None}
    plan = plan_batch(records, stored, POLICY, input_topics=INPUT_TOPICS,
                      decisions_topic="jit.decisions", deadletter_topic="jit.deadletter",
                      max_event_bytes=64 * 1024, now=lambda: NOW)
    assert [out.topic for out in plan.outbound] == ["jit.deadletter", "jit.decisions"]
    headers = dict(plan.outbound[0].headers)
    assert headers["error.class"] == b"OSError"
    assert b"rocksdb: IO error" in headers["error.message"]
    assert orjson.loads(plan.outbound[1].value)["action"] == "approve"  # type: ignore[arg-type]
    assert list(plan.writes) == [b"bob"]


def test_decision_carries_cause_coordinates_and_policy() -> None:
    plan = _plan([_record(41, raw_request("r-1", [("db", "prod")]))])
    decision = orjson.loads(plan.outbound[0].value)  # type: ignore[arg-type]
    assert decision["schema"] == "jit.decision/v1"
    assert decision["cause"] == {"event_id": "e-r-1", "type": "request.created",
                                 "topic": "jit.requests", "partition": 0, "offset": 41}
    assert decision["policy"] == {"version": POLICY.ref.version, "sha256": POLICY.ref.sha256}
    assert decision["emitted_at"] == "2026-11-23T12:00:00Z"
    # The cause is built unvalidated; the bytes are those of a validated decision.
    value = plan.outbound[0].value
    assert Decision.model_validate_json(value or b"").model_dump_json(by_alias=True).encode() \
        == value


def test_redelivered_batch_yields_nothing_new_and_stores_the_state_again() -> None:
    record = _record(0, raw_request("r-1", [("db", "prod")]))
    first = _plan([record])
    again = _plan([record], store={b"alice": first.writes[b"alice"].value})
    assert again.outbound == []
    # The same value once more: the changelog write of the first run may have been lost
    # in a crash while the local store kept the value (found by tests/faults kill -9).
    assert again.writes[b"alice"].value == first.writes[b"alice"].value


def test_a_tick_with_nothing_to_end_stores_the_state_again() -> None:
    from streams.engine.codec import encode_tick
    from tests.factories import at

    first = _plan([_record(0, raw_request("r-1", [("db", "prod")], ttl_s=60))])
    stored = first.writes[b"alice"].value
    early = Record("jitwatch-commands", 0, 0, b"alice", encode_tick(at(1), b"alice", "default"))
    plan = plan_batch([early], {(0, b"alice"): stored}, POLICY, input_topics=INPUT_TOPICS,
                      decisions_topic="jit.decisions", deadletter_topic="jit.deadletter",
                      max_event_bytes=64 * 1024, now=lambda: NOW,
                      commands_topic="jitwatch-commands")
    assert plan.outbound == []
    assert plan.writes[b"alice"].value == stored


def test_a_batch_is_decided_in_event_time_across_topics() -> None:
    """A task completion read before the approval it ends (another topic) still ends it."""
    from tests.factories import raw_event

    done = raw_event("task.completed", event_id="e-done", t=5, request_id="r-1")
    records = [
        Record("jit.sessions", 0, 0, b"alice", orjson.dumps(done)),
        _record(0, raw_request("r-1", [("db", "prod")], t=1)),
    ]
    plan = _plan(records)
    decisions = [orjson.loads(out.value) for out in plan.outbound]  # type: ignore[arg-type]
    assert [(d["action"], d["rule"]["id"]) for d in decisions] == [
        ("approve", "auto-approve"), ("revoke", "task-completed")]


def test_notices_go_to_the_notices_topic_from_the_tick_and_never_to_decisions() -> None:
    """Issue J: a tick at a grant's notice time sends its expiry-soon notice to the notices
    topic, keyed by subject; the same tick again (a redelivery) sends the same notice id,
    and a tick after it was stored sends none."""
    from streams.engine.codec import encode_tick

    granted = _plan([_record(0, raw_request("r-1", [("db", "prod")], ttl_s=3600))])
    store = {write.key: write.value for write in granted.writes.values() if write.value}
    deadline = granted.deadlines[(b"alice", "default")]
    assert deadline is not None  # the notice time, 900 s before expiry by default
    tick = Record("jitwatch-commands", 0, 1, b"alice", encode_tick(deadline, b"alice",
                                                                   "default"))

    def ticked(values: dict[bytes, bytes]):  # type: ignore[no-untyped-def]
        return plan_batch([tick], _stored([tick], values), POLICY, input_topics=INPUT_TOPICS,
                          decisions_topic="jit.decisions", deadletter_topic="jit.deadletter",
                          max_event_bytes=64 * 1024, now=lambda: NOW,
                          commands_topic="jitwatch-commands", notices_topic="jit.notices")

    plan = ticked(store)
    assert [(out.topic, out.key) for out in plan.outbound] == [("jit.notices", b"alice")]
    notice = orjson.loads(plan.outbound[0].value)  # type: ignore[arg-type]
    assert (notice["schema"], notice["kind"], notice["request_id"]) == (
        "jit.notice/v1", "expiry-soon", "r-1")
    assert notice["at"] == deadline.isoformat().replace("+00:00", "Z")
    assert notice["cause"]["topic"] == "jitwatch-commands"
    assert plan.notices == 1
    assert plan.decisions == 0
    again = ticked(store)
    assert orjson.loads(again.outbound[0].value)["notice_id"] == notice["notice_id"]  # type: ignore[arg-type]
    after = {write.key: write.value for write in plan.writes.values() if write.value}
    assert all(out.topic != "jit.notices" for out in ticked(after).outbound)
