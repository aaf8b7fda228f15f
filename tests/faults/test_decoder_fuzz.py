"""Decoder fuzzing (issue E): whatever bytes arrive, the worker's decode path and batch
planner raise nothing but ``InputError``, and invalid input never yields an approve.

Three generators: raw bytes, structurally plausible JSON (valid events with mutations) and
whole batches mixing both with valid events. ``JITWATCH_FUZZ_CASES`` sets the total number
of cases (default 100,000 when ``CI`` is set, 3,000 otherwise), shared out between them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import InputError
from schemas.policy import parse_policy
from streams.engine.codec import decode_event, parse_event
from streams.engine.dead_letters import VALUE_NULL_HEADER
from streams.engine.plan import Record, plan_batch
from streams.engine.topics import InputTopics
from tests.faults.report import summary

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
INPUT_TOPICS = InputTopics(requests="jit.requests", sessions="jit.sessions")
MAX_BYTES = 4096  # small, so the generators reach the oversized branch too
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
TOTAL = int(os.environ.get("JITWATCH_FUZZ_CASES") or (100_000 if os.environ.get("CI") else 3_000))
SHARES = {"raw": 0.35, "mutated": 0.40, "batch": 0.25}


def _fuzz(share: str) -> Any:
    return settings(max_examples=max(1, int(TOTAL * SHARES[share])), deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------- generators
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["", "2026-11-23T10:00:00Z", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-01:00", "2026-13-45T99:99:99Z", "2026-11-23T10:00:00",
                     "request.created", "session.started", "clock.tick", "approve", "prod",
                     "high", "x" * 600, "\u0000", "\ud7ff\ue000"]),
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
# Any offset, up to the ends of the calendar: converting those to UTC must not crash.
times = st.datetimes(timezones=st.sampled_from(
    [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12, minutes=30))]),
).map(lambda moment: moment.isoformat()) | st.sampled_from(
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59Z",
     "2026-11-23T10:00:00", "2026-11-23T10:00:00.123456789Z", "2026-11-23 10:00Z"])
subject = st.fixed_dictionaries(
    {"id": st.sampled_from(["alice", "bob", "spiffe://acme.example/ns/ci/sa/deployer"])},
    optional={"kind": st.sampled_from(["human", "workload", "agent"]),
              "issuer": st.just("spiffe://acme.example"), "attested": st.booleans(),
              "owner": st.just("team-payments")},
)
resource = st.fixed_dictionaries(
    {"id": st.sampled_from(["db/orders", "s3/logs", "k8s/prod"]),
     "env": st.sampled_from(["prod", "research", "staging"])},
    optional={"sensitivity": st.sampled_from(["low", "medium", "high", "critical"]),
              "roles": st.lists(st.sampled_from(["db-writer", "admin"]), max_size=2)},
)
common_fields = {"event_id": st.text(min_size=1, max_size=20), "at": times,
                 "tenant": st.sampled_from(["default", "acme"]), "subject": subject}
request_ids = st.sampled_from(["r-1", "r-2", "r-3"])
valid_event = st.one_of(
    st.fixed_dictionaries({**common_fields, "type": st.just("request.created"),
                           "request_id": request_ids,
                           "resources": st.lists(resource, min_size=1, max_size=4)},
                          optional={"ttl_s": st.integers(1, 40_000), "reason": st.just("fix"),
                                    "ticket": st.just("OPS-1"), "break_glass": st.booleans()}),
    st.fixed_dictionaries({**common_fields, "type": st.just("request.reviewed"),
                           "request_id": request_ids, "reviewer": st.just({"id": "carol"}),
                           "outcome": st.sampled_from(["approved", "denied"])}),
    st.fixed_dictionaries({**common_fields, "type": st.sampled_from(
        ["request.withdrawn", "task.completed"]), "request_id": request_ids}),
    st.fixed_dictionaries({**common_fields, "type": st.just("lock.released"),
                           "target": st.sampled_from([{"subject": "alice"},
                                                      {"request_id": "r-1"}, {}])}),
    st.fixed_dictionaries({**common_fields, "type": st.just("session.started"),
                           "session_id": st.just("s-1"), "request_id": request_ids,
                           "resource": st.just("db/orders")}),
    st.fixed_dictionaries({**common_fields, "type": st.just("session.activity"),
                           "session_id": st.just("s-1"), "resource": st.just("db/orders"),
                           "action": st.just("SELECT")}),
    st.fixed_dictionaries({**common_fields, "type": st.just("session.ended"),
                           "session_id": st.just("s-1")}),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for name, child in value.items():
            yield from _paths(child, (*prefix, name))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _mutate(event: dict[str, Any], path: tuple[Any, ...], how: str, replacement: Any) -> Any:
    """``event`` with the value at ``path`` replaced, deleted, or wrapped in a list."""
    if not path:
        return replacement if how == "replace" else [event]
    *parents, last = path
    holder = event
    for part in parents:
        holder = holder[part]
    if how == "delete":
        del holder[last]
    elif how == "wrap":
        holder[last] = [holder[last]]
    else:
        holder[last] = replacement
    return event


@st.composite
def mutated_event(draw: st.DrawFn) -> bytes:
    """A valid event, then one to three mutations: typed wrongly, removed, nested, extra."""
    # A copy: the strategies hand out shared dicts (st.just), which must stay unmutated.
    event: Any = orjson.loads(orjson.dumps(draw(valid_event)))
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(event, dict | list) or not event:
            break
        paths = list(_paths(event))
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "extra"]))
        if how == "extra":
            holder = event
            for part in path:
                holder = holder[part]
            if isinstance(holder, dict):
                holder[draw(st.text(max_size=8))] = draw(json_value)
            continue
        if how == "delete" and not path:
            how = "replace"
        event = _mutate(event, path, how, draw(json_value))
    encoded = orjson.dumps(event)
    if draw(st.integers(0, 9)) == 0:  # sometimes break the JSON itself
        cut = draw(st.integers(0, len(encoded)))
        splice = draw(st.one_of(st.binary(max_size=4), st.just(b"9" * 30)))  # past 64 bits
        encoded = encoded[:cut] + splice + encoded[cut + 1:]
    return encoded


keys = st.one_of(st.none(), st.just(b""), st.sampled_from([b"alice", b"bob"]),
                 st.binary(max_size=16))
raw_values = st.one_of(st.none(), st.binary(max_size=64),
                       st.integers(MAX_BYTES - 8, MAX_BYTES + 8).map(lambda n: b"{" * n))


def _decodes(key: bytes | None, value: bytes | None) -> bool:
    """Whether the worker accepts the record; anything but InputError fails the test."""
    try:
        decode_event(key, value, MAX_BYTES)
    except InputError as exc:
        error_class = exc.error_class
    else:
        return True
    assert error_class in {"null-record", "missing-key", "missing-value", "oversized",
                           "invalid-json", "schema-violation", "key-mismatch"}, error_class
    return False


# ---------------------------------------------------------------- properties
_counts = {"raw": 0, "mutated": 0, "batch": 0}


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    started, failed = time.monotonic(), request.session.testsfailed
    yield
    cases = sum(_counts.values())
    summary("decoder-fuzz", events=cases, faults=cases, lost=0, duplicates=0,
            seconds=time.monotonic() - started, passed=request.session.testsfailed == failed,
            detail=", ".join(f"{name} {count}" for name, count in _counts.items()))


@_fuzz("raw")
@given(keys, raw_values)
def test_raw_bytes_never_escape_the_decoder(key: bytes | None, value: bytes | None) -> None:
    _counts["raw"] += 1
    _decodes(key, value)
    if value is not None:
        with contextlib.suppress(InputError):
            parse_event(value, MAX_BYTES)


@_fuzz("mutated")
@given(mutated_event(), st.sampled_from([b"alice", b"spiffe://acme.example/ns/ci/sa/deployer",
                                         None]))
def test_mutated_events_never_escape_the_decoder(value: bytes, key: bytes | None) -> None:
    _counts["mutated"] += 1
    _decodes(key or b"alice", value)


@st.composite
def record_value(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        event = draw(valid_event)
        return event["subject"]["id"].encode(), orjson.dumps(event)
    if kind == 1:
        return draw(st.sampled_from([b"alice", b"bob"])), draw(mutated_event())
    return draw(keys), draw(raw_values)


@_fuzz("batch")
@given(st.lists(record_value(), min_size=1, max_size=8))
def test_batches_dead_letter_bad_records_and_never_approve_them(
        batch: list[tuple[bytes | None, bytes | None]]) -> None:
    _counts["batch"] += 1
    records = [Record("jit.requests", 0, offset, key, value)
               for offset, (key, value) in enumerate(batch)]
    plan = plan_batch(records, {}, POLICY, input_topics=INPUT_TOPICS,
                      decisions_topic="jit.decisions", deadletter_topic="jit.deadletter",
                      max_event_bytes=MAX_BYTES, now=lambda: NOW)
    for index, (key, value) in enumerate(batch):
        produced = [out for out in plan.outbound if out.source == index]
        if _decodes(key, value):
            continue
        assert [out.topic for out in produced] == ["jit.deadletter"], produced
        if key is None and value is None:  # no producer sends neither: CONTRACT, null-record
            assert (produced[0].key, produced[0].value) == (None, b"")
            assert (VALUE_NULL_HEADER, b"true") in produced[0].headers
        else:
            assert (produced[0].key, produced[0].value) == (key, value), "bytes kept unchanged"
    for out in plan.outbound:
        if out.topic == "jit.decisions":
            assert _decodes(*batch[out.source]), "a decision from a record that cannot decode"
