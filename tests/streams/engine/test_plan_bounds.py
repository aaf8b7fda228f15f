"""Issue H, finding 5, the stream side: no stored value passes the changelog's message
limit; a subject whose value would is refused alone, the rest of its batch is stored."""

from __future__ import annotations

from datetime import datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.state import Mark, StoredSubject, SubjectState
from streams.engine.codec import decode_stored, encode_stored, encode_tick
from streams.engine.plan import BatchPlan, Record, plan_batch, stored_keys
from tests.factories import at, raw_event, raw_request
from tests.streams.engine.test_plan import INPUT_TOPICS, NOW, POLICY


def _plan(records: list[Record], limit: int) -> BatchPlan:
    return plan_batch(records, dict.fromkeys(stored_keys(records)), POLICY,
                      input_topics=INPUT_TOPICS, decisions_topic="jit.decisions",
                      deadletter_topic="jit.deadletter", max_event_bytes=64 * 1024,
                      now=lambda: NOW, max_stored_bytes=limit)


def _record(offset: int, raw: dict[str, object], topic: str = "jit.requests") -> Record:
    subject = raw["subject"]
    assert isinstance(subject, dict)
    return Record(topic, 0, offset, subject["id"].encode(), orjson.dumps(raw))


def test_a_value_over_the_limit_is_that_subjects_dead_letter_and_deny() -> None:
    big = [(f"db/{'x' * 400}-{n}", "prod") for n in range(3)]
    records = [_record(0, raw_request("r-1", big, subject="alice")),
               _record(1, raw_request("r-2", [("db/b", "prod")], subject="bob"))]
    plan = _plan(records, 1500)
    assert set(plan.writes) == {b"bob"}
    assert all(len(write.value or b"") <= 1500 for write in plan.writes.values())
    decided = [(out.topic, out.source, orjson.loads(out.value or b"{}").get("action"))
               for out in plan.outbound]
    assert decided == [("jit.decisions", 0, "deny"), ("jit.deadletter", 0, None),
                       ("jit.decisions", 1, "approve")]
    deny = orjson.loads(plan.outbound[0].value or b"")
    assert deny["rule"]["id"] == "state-limit"
    dead = dict(plan.outbound[1].headers)
    assert dead["error.class"] == b"state-oversized"
    assert plan.dead_letters == 1


def test_an_event_that_decides_nothing_writes_nothing() -> None:
    records = [_record(0, raw_event("session.ended", event_id="e-1", session_id="s-x"),
                       topic="jit.sessions")]
    plan = _plan(records, 1_000_000)
    assert plan.writes == {}
    assert plan.outbound == []


names = st.text(alphabet="abcxyz/", min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alice", "bob"]),
                          st.lists(names, min_size=1, max_size=5)), min_size=1, max_size=12),
       st.integers(min_value=600, max_value=4000))
def test_no_stored_value_exceeds_the_limit(asks: list[tuple[str, list[str]]], limit: int
                                           ) -> None:
    records = [_record(n, raw_request(f"r-{n}", [(rid, "prod") for rid in ids], t=n,
                                      subject=who))
               for n, (who, ids) in enumerate(asks)]
    plan = _plan(records, limit)
    assert all(len(write.value or b"") <= limit for write in plan.writes.values())
    # every input still gets its answer
    assert {out.source for out in plan.outbound if out.topic == "jit.decisions"} == set(
        range(len(records)))


def test_a_refused_tenant_writes_nothing_and_an_empty_value_is_deleted() -> None:
    records = [_record(0, raw_request("r-1", [("db/a", "prod")], tenant="nope"))]
    plan = _plan(records, 1_000_000)
    assert [orjson.loads(out.value or b"")["rule"]["id"] for out in plan.outbound] == [
        "unknown-tenant"]
    assert plan.writes == {}
    # A value with no tenant left (as stored by older versions) is deleted: a tombstone.
    stored = dict.fromkeys(stored_keys(records), b'{"tenants":{}}')
    plan = plan_batch(records, stored, POLICY, input_topics=INPUT_TOPICS,
                      decisions_topic="jit.decisions", deadletter_topic="jit.deadletter",
                      max_event_bytes=64 * 1024, now=lambda: NOW)
    assert plan.writes[b"alice"].value is None


def _tick_plan(stored: StoredSubject, deadline: datetime, tenant: str = "default"
               ) -> BatchPlan:
    tick = Record("jitwatch-commands", 0, 7, b"alice", encode_tick(deadline, b"alice", tenant))
    return plan_batch([tick], {(0, b"alice"): encode_stored(stored)}, POLICY,
                      input_topics=INPUT_TOPICS, decisions_topic="jit.decisions",
                      deadletter_topic="jit.deadletter", max_event_bytes=64 * 1024,
                      now=lambda: NOW, commands_topic="jitwatch-commands")


def test_a_tick_that_empties_the_subject_deletes_it() -> None:
    # Issue H: a subject with nothing live or remembered is not kept; expiry is how most
    # subjects get there (here: its lock ends, then its last remembered request id).
    locked = SubjectState(applied=("e-1",), locked_until=at(60),
                          requested=(Mark("0" * 16, at(90)),))
    plan = _tick_plan(StoredSubject(tenants={"default": locked}), at(60))
    [unlock] = [orjson.loads(out.value or b"") for out in plan.outbound]
    assert (unlock["action"], unlock["rule"]["id"]) == ("unlock", "lock-expired")
    left = decode_stored(plan.writes[b"alice"].value)
    assert left is not None
    assert plan.deadlines[(b"alice", "default")] == at(90)
    plan = _tick_plan(left, at(90))
    assert plan.outbound == []
    assert plan.writes[b"alice"].value is None, "a delete (tombstone), not an empty value"
    assert plan.deadlines[(b"alice", "default")] is None


def test_a_tick_that_empties_one_tenant_keeps_the_others() -> None:
    remembered = SubjectState(applied=("e-1",), requested=(Mark("0" * 16, at(90)),))
    other = SubjectState(applied=("e-2",), requested=(Mark("1" * 16, at(500)),))
    plan = _tick_plan(StoredSubject(tenants={"default": remembered, "acme": other}), at(90))
    left = decode_stored(plan.writes[b"alice"].value)
    assert left is not None
    assert left.tenants == {"acme": other}
