"""Trusted time (issue H, finding 2) and one order for stream and replay (finding 13).

The producer's ``at`` is a claim; the broker's LogAppendTime (``Record.timestamp``, or a
replay line's ``broker_time``) is what decisions are made on, and per subject it never runs
backwards.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas._base import format_time
from schemas.decisions import Decision
from schemas.policy import parse_policy
from streams.engine.codec import replay_line
from streams.engine.plan import LOG_APPEND_TIME, Record, plan_batch, stored_keys
from streams.engine.replay import BadLine, Replay, replay_lines
from streams.engine.topics import InputTopics
from tests.factories import T0, at, raw_event, raw_request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
INPUT_TOPICS = InputTopics(requests="jit.requests", sessions="jit.sessions")
YEAR = 365 * 86400
MAX_TTL_S = max(POLICY.policy.defaults.ttl.max_s, POLICY.policy.defaults.break_glass.ttl_s,
                *(limit.max_s for limit in POLICY.policy.defaults.ttl.limits))


def _line(raw: dict[str, Any], broker_s: float | None) -> bytes:
    if broker_s is not None:
        raw = {**raw, "broker_time": format_time(at(broker_s))}
    return orjson.dumps(raw)


def _replay(lines: list[bytes]) -> list[Decision | BadLine]:
    return [item for item in replay_lines(lines, POLICY, Replay(), 65536)
            if isinstance(item, Decision | BadLine)]


def _decisions(items: list[Any]) -> list[Decision]:
    return [item for item in items if isinstance(item, Decision)]


def _record(offset: int, raw: dict[str, Any], broker_s: float,
            topic: str = "jit.requests") -> Record:
    return Record(topic, 0, offset, raw["subject"]["id"].encode(), orjson.dumps(raw),
                  timestamp=at(broker_s).timestamp(), timestamp_type=LOG_APPEND_TIME)


def _plan_batches(records: list[Record], cuts: list[int]) -> list[dict[str, Any]]:
    """Plan ``records`` cut into batches at ``cuts``, carrying stored state across, as the
    worker does; the decisions' JSON in output order."""
    store: dict[bytes, bytes] = {}
    out: list[dict[str, Any]] = []
    bounds = [0, *cuts, len(records)]
    for start, end in itertools.pairwise(bounds):
        batch = records[start:end]
        plan = plan_batch(batch, {where: store.get(where[1]) for where in stored_keys(batch)},
                          POLICY, input_topics=INPUT_TOPICS, decisions_topic="jit.decisions",
                          deadletter_topic="jit.deadletter", max_event_bytes=65536,
                          now=lambda: datetime(2030, 1, 1, tzinfo=UTC))
        for write in plan.writes.values():
            store[write.key] = write.value
        out += [orjson.loads(o.value) for o in plan.outbound  # type: ignore[arg-type]
                if o.topic == "jit.decisions"]
    return out


def test_a_request_stamped_a_year_ahead_is_not_granted_until_then() -> None:
    items = _replay([_line(raw_request("r-1", [("db", "prod")], t=YEAR), broker_s=0)])
    decisions = _decisions(items)
    assert [(d.action, d.rule.id) for d in decisions] == [("deny", "clock-skew")]
    assert decisions[0].at == at(0)  # decided on the broker's clock


def test_the_stream_decides_a_year_ahead_request_on_broker_time() -> None:
    raw = raw_request("r-1", [("db", "prod")], t=YEAR)
    decided = _plan_batches([_record(0, raw, broker_s=0)], [])
    assert [(d["action"], d["rule"]["id"]) for d in decided] == [("deny", "clock-skew")]


def test_a_request_stamped_past_a_lock_end_does_not_end_the_lock() -> None:
    lines = [
        # Activity no grant covers: the subject is locked for locks.default_s (1 h).
        _line(raw_event("session.activity", t=0, event_id="e-1", session_id="s-1",
                        resource="db", action="read"), broker_s=0),
        # Stamped 2 h later, but the broker received it 1 min later: the lock still holds.
        _line(raw_request("r-1", [("db", "prod")], t=7200), broker_s=60),
        _line(raw_request("r-2", [("db", "prod")], t=60, event_id="e-r2"), broker_s=61),
    ]
    decisions = _decisions(_replay(lines))
    assert [(d.action, d.rule.id) for d in decisions] == [
        ("lock", "session-out-of-scope"), ("deny", "clock-skew"), ("deny", "subject-locked")]


def test_time_never_runs_backwards_for_a_subject() -> None:
    records = [
        _record(0, raw_request("r-1", [("a", "prod")], t=1000, ttl_s=600), broker_s=1000),
        # Appended earlier but decided in a later batch (a record of another topic or
        # partition fetched late): it is decided at the subject's time, not back at 10.
        _record(1, raw_request("r-2", [("b", "prod")], t=10, ttl_s=600, event_id="e-r2"),
                broker_s=10),
    ]
    second = [d for d in _plan_batches(records, [1]) if d["request_id"] == "r-2"]
    # Decided at 1000, never back at 10; its 600 s run from its own broker time (10), so
    # it is spent by the time it is decided: it expires at once (the next tick revokes
    # it), never before it was decided.
    assert [(d["action"], d["at"], d["expires_at"]) for d in second] == [
        ("approve", format_time(at(1000)), format_time(at(1000)))]


def test_a_replay_decides_in_broker_time_order_as_one_batch_of_the_stream() -> None:
    raws = [(raw_request("r-1", [("a", "prod")], t=1000, ttl_s=600), 1000),
            (raw_request("r-2", [("b", "prod")], t=10, ttl_s=600, event_id="e-r2"), 10)]
    replayed = _decisions(_replay([_line(raw, broker) for raw, broker in raws]))
    assert [(d.request_id, d.at) for d in replayed if d.action == "approve"] == [
        ("r-2", at(10)), ("r-1", at(1000))]
    one_batch = _plan_batches([_record(n, raw, broker) for n, (raw, broker) in
                               enumerate(raws)], [])
    assert [_what(d) for d in one_batch] == [
        _what(d.model_dump(mode="json", by_alias=True)) for d in replayed]


def test_a_session_event_with_a_lying_clock_is_a_dead_letter() -> None:
    items = _replay([_line(raw_event("session.ended", t=-YEAR, event_id="e-1",
                                     session_id="s-1"), broker_s=0)])
    assert [(item.number, item.error_class) for item in items
            if isinstance(item, BadLine)] == [(1, "clock-skew")]
    raw = raw_event("session.ended", t=-YEAR, event_id="e-1", session_id="s-1")
    plan = plan_batch([_record(0, raw, 0, topic="jit.sessions")], {}, POLICY,
                      input_topics=INPUT_TOPICS, decisions_topic="jit.decisions",
                      deadletter_topic="jit.deadletter", max_event_bytes=65536,
                      now=lambda: T0)
    assert [dict(o.headers)["error.class"] for o in plan.outbound] == [b"clock-skew"]


def test_the_stream_refuses_a_producer_timestamp() -> None:
    raw = raw_request("r-1", [("db", "prod")])
    record = Record("jit.requests", 0, 0, b"alice", orjson.dumps(raw),
                    timestamp=at(0).timestamp(), timestamp_type=0)  # CreateTime
    plan = plan_batch([record], {}, POLICY, input_topics=INPUT_TOPICS,
                      decisions_topic="jit.decisions", deadletter_topic="jit.deadletter",
                      max_event_bytes=65536, now=lambda: T0)
    assert [dict(o.headers)["error.class"] for o in plan.outbound] == [b"clock-untrusted"]


def test_a_broker_time_inside_a_record_value_is_ignored() -> None:
    raw = {**raw_request("r-1", [("db", "prod")], t=YEAR),
           "broker_time": format_time(at(YEAR))}
    decided = _plan_batches([_record(0, raw, broker_s=0)], [])
    assert [d["rule"]["id"] for d in decided] == ["clock-skew"]


# An adversarial interleaving: a withdrawal stamped before its request, a session stamped
# before the approval it uses, on two topics, in broker (arrival) order.
_EVENTS = [
    (raw_request("r-1", [("db", "prod")], t=100), 1, "jit.requests"),
    (raw_event("request.withdrawn", t=50, event_id="e-w1", request_id="r-1"), 2,
     "jit.requests"),
    (raw_request("r-2", [("db", "prod")], t=40, event_id="e-r2"), 3, "jit.requests"),
    (raw_event("session.started", t=30, event_id="e-s1", session_id="s-1",
               request_id="r-2", resource="db"), 4, "jit.sessions"),
    (raw_event("task.completed", t=20, event_id="e-t2", request_id="r-2"), 5,
     "jit.sessions"),
]


def _what(decision: dict[str, Any]) -> tuple[Any, ...]:
    return (decision["decision_id"], decision["action"], decision["request_id"],
            decision["rule"]["id"], decision["at"], decision["expires_at"])


def test_batch_boundaries_do_not_change_decisions() -> None:
    records = [_record(offset, raw, broker, topic)
               for offset, (raw, broker, topic) in enumerate(_EVENTS)]
    whole = [_what(d) for d in _plan_batches(records, [])]
    for cuts in ([1], [2], [1, 2, 3, 4], [3], [2, 4]):
        assert [_what(d) for d in _plan_batches(records, cuts)] == whole, cuts
    replayed = _decisions(_replay([_line(raw, broker) for raw, broker, _ in _EVENTS]))
    assert [_what(d.model_dump(mode="json", by_alias=True)) for d in replayed] == whole
    # The withdrawal came after its request: it ends the grant, whatever it claims.
    assert ("revoke", "r-1", "request-withdrawn") in [(w[1], w[2], w[3]) for w in whole]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(-2 * YEAR, 2 * YEAR), st.integers(0, 3600),
                          st.booleans(), st.sampled_from([None, 60, 40_000])),
                min_size=1, max_size=25))
def test_no_grant_outlives_broker_time_plus_max_ttl(
        steps: list[tuple[int, int, bool, int | None]]) -> None:
    lines, broker, latest = [], 0, {}
    for number, (claim, gap, glass, ttl) in enumerate(steps):
        broker += gap
        extra: dict[str, Any] = {"break_glass": glass}
        if ttl is not None:
            extra["ttl_s"] = ttl
        raw = raw_request(f"r-{number}", [(f"res-{number % 3}", "staging")], t=broker + claim,
                          event_id=f"e-{number}", **extra)
        latest[f"e-{number}"] = broker
        lines.append(_line(raw, broker))
    for decision in _decisions(_replay(lines)):
        if decision.action == "approve":
            limit = at(latest[decision.cause.event_id]) + timedelta(seconds=MAX_TTL_S)
            assert decision.expires_at is not None
            assert decision.expires_at <= limit
            assert decision.at <= at(latest[decision.cause.event_id])


# Trusted time meets the other issue-H work merged beside it: sessions remembering ended
# grants, held sessions settled when their grant arrives, and the stored-size refusal.


def test_a_session_on_an_ended_grant_locks_at_broker_time() -> None:
    lines = [
        _line(raw_request("r-1", [("db", "prod")], t=0), broker_s=0),
        _line(raw_event("request.withdrawn", t=10, event_id="e-w1", request_id="r-1"),
              broker_s=10),
        # Claimed 180 s before the broker received it (within the skew).
        _line(raw_event("session.started", t=20, event_id="e-s1", session_id="s-1",
                        request_id="r-1", resource="db"), broker_s=200),
    ]
    locks = [d for d in _decisions(_replay(lines)) if d.cause.event_id == "e-s1"]
    assert [(d.action, d.rule.id, d.at) for d in locks] == [
        ("lock", "session-without-grant", at(200))]
    assert locks[0].expires_at == at(200 + POLICY.policy.defaults.locks.default_s)


def test_a_held_session_settles_at_the_broker_time_of_its_grant() -> None:
    lines = [
        _line(raw_event("session.started", t=0, event_id="e-s1", session_id="s-1",
                        request_id="r-1", resource="db"), broker_s=0),
        # Its grant arrives within the grace, claimed at 0 but received at 20, and does
        # not cover db: the hold ends in a lock at the grant's broker time.
        _line(raw_request("r-1", [("other", "prod")], t=0), broker_s=20),
    ]
    decided = [(d.action, d.rule.id, d.at, d.expires_at) for d in _decisions(_replay(lines))]
    lock_s = POLICY.policy.defaults.locks.default_s
    assert ("lock", "session-out-of-scope", at(20), at(20 + lock_s)) in decided
    assert all(when == at(20) for _, _, when, _ in decided)


def test_a_state_too_large_to_store_is_refused_at_broker_time() -> None:
    line = _line(raw_request("r-1", [("db", "prod")], t=200), broker_s=0)
    items = [item for item in replay_lines([line], POLICY, Replay(), 65536,
                                           max_stored_bytes=16)
             if isinstance(item, Decision)]
    assert [(d.action, d.rule.id, d.at) for d in items] == [("deny", "state-limit", at(0))]
    raw = raw_request("r-1", [("db", "prod")], t=200)
    plan = plan_batch([_record(0, raw, 0)], {}, POLICY, input_topics=INPUT_TOPICS,
                      decisions_topic="jit.decisions", deadletter_topic="jit.deadletter",
                      max_event_bytes=65536, now=lambda: T0, require_broker_time=True,
                      max_stored_bytes=16)
    decided = [orjson.loads(o.value) for o in plan.outbound  # type: ignore[arg-type]
               if o.topic == "jit.decisions"]
    assert [(d["rule"]["id"], d["at"]) for d in decided] == [
        ("state-limit", format_time(at(0)))]
    assert not plan.writes


def test_an_exported_line_carries_the_records_broker_time_not_the_producers() -> None:
    raw = {**raw_request("r-1", [("db", "prod")]), "broker_time": "2030-01-01T00:00:00Z"}
    line = replay_line(orjson.dumps(raw), at(5))
    assert line is not None
    assert orjson.loads(line)["broker_time"] == format_time(at(5))
    decided = _decisions(_replay([line]))
    assert [d.at for d in decided] == [at(5)]
    assert replay_line(b"[1]", at(5)) is None
    assert replay_line(b"{", at(5)) is None
    assert replay_line(None, at(5)) is None


# One order for stream and replay: a grant made after a session event never covers it. The
# worker plans batches as they come and Kafka does not order jit.requests against
# jit.sessions, so a session event may be decided after a later request of its subject.
_ATTACK = [
    (raw_request("r-1", [("db/a", "prod")], t=0), 0, "jit.requests"),
    (raw_event("session.activity", t=5, event_id="gw-2", session_id="s-1",
               resource="db/secrets", action="COPY payroll TO STDOUT"), 5, "jit.sessions"),
    (raw_request("r-2", [("db/secrets", "prod")], t=6, event_id="e-r2"), 6, "jit.requests"),
]


def _outcome(decided: list[dict[str, Any]]) -> tuple[list[str], set[str]]:
    """The rules that locked the subject, and the requests whose grants are still live."""
    live: set[str] = set()
    for d in decided:
        if d["action"] == "approve":
            live.add(d["request_id"])
        live -= set(d["targets"])
    return [d["rule"]["id"] for d in decided if d["action"] == "lock"], live


def test_a_grant_made_after_the_activity_never_covers_it_however_batches_are_cut() -> None:
    by_topic = {topic: itertools.count() for _, _, topic in _ATTACK}
    records = [_record(next(by_topic[topic]), raw, broker, topic)
               for raw, broker, topic in _ATTACK]
    replayed = [d.model_dump(mode="json", by_alias=True)
                for d in _decisions(_replay([_line(raw, broker) for raw, broker, _ in _ATTACK]))]
    whole = _plan_batches(records, [])
    assert [_what(d) for d in whole] == [_what(d) for d in replayed]
    assert [(d["action"], d["rule"]["id"], d["at"]) for d in whole] == [
        ("approve", "auto-approve", format_time(at(0))),
        ("lock", "session-out-of-scope", format_time(at(5))),
        ("deny", "subject-locked", format_time(at(6)))]
    # Light load: one record a batch, the requests partition fetched before the sessions
    # one. r-2 is approved before the activity is seen (a decision sent is not taken
    # back), but the activity is judged as of its own time, when r-2 was not granted:
    # the same lock, at the subject's later clock, ending r-2's grant with r-1's.
    split = _plan_batches([records[0], records[2], records[1]], [1, 2])
    assert [(d["action"], d["rule"]["id"], d["at"], d["targets"]) for d in split] == [
        ("approve", "auto-approve", format_time(at(0)), []),
        ("approve", "auto-approve", format_time(at(6)), []),
        ("lock", "session-out-of-scope", format_time(at(6)), ["r-1", "r-2"])]
    assert _outcome(split) == _outcome(whole) == (["session-out-of-scope"], set())
    # Cut in broker order, the batches decide exactly as one batch does.
    for cuts in ([1], [2], [1, 2]):
        assert [_what(d) for d in _plan_batches(records, cuts)] == [_what(d) for d in whole]


def _sized(number: int, note: str) -> bytes:
    raw = raw_request(f"r-{number}", [("db", "dev")], event_id=f"e-{number}")
    return orjson.dumps({**raw, "x_note": "@"})[:-1].replace(b'"@"', b'"' + note.encode() + b'"') \
        + b"}"


def test_an_exported_line_is_the_records_own_bytes_so_sizes_agree() -> None:
    """The second adversarial review: the export re-encoded records, so one over the limit
    only through JSON escapes replayed as approved, and one just under it as skipped."""
    limit = 4096
    escaped = _sized(1, "\\u0041" * 700)  # 4.2 KB as sent, 0.7 KB once re-encoded
    snug = _sized(2, "A" * (limit - len(_sized(2, "")) - 10))
    for value, stream_class in ((escaped, b"oversized"), (snug, None)):
        record = Record("jit.requests", 0, 0, b"alice", value,
                        timestamp=at(5).timestamp(), timestamp_type=LOG_APPEND_TIME)
        plan = plan_batch([record], {}, POLICY, input_topics=INPUT_TOPICS,
                          decisions_topic="jit.decisions", deadletter_topic="jit.deadletter",
                          max_event_bytes=limit, now=lambda: T0)
        classes = [dict(o.headers)["error.class"] for o in plan.outbound if o.headers]
        assert classes == ([stream_class] if stream_class else [])
        line = replay_line(value, at(5))
        assert line is not None
        assert line.startswith(value[:-1])  # the record's own bytes
        replayed = list(replay_lines([line], POLICY, Replay(), limit))
        assert [item.error_class for item in replayed if isinstance(item, BadLine)] == (
            ["oversized"] if stream_class else [])
        assert len(_decisions(replayed)) == (0 if stream_class else 1)
