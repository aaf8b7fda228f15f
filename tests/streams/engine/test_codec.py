"""The edge decoder: every way a record can be bad maps to one dead-letter class."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy import next_deadline
from schemas.errors import InputError
from schemas.events import Resource
from schemas.state import (
    Grant,
    Mark,
    Pending,
    RequestLock,
    Session,
    StoredSubject,
    SubjectState,
)
from streams.engine.codec import (
    dead_letter_headers,
    decode_command,
    decode_event,
    decode_stored,
    encode_stored,
    encode_tick,
    stored_deadlines,
)
from tests.factories import T0, raw_request

LIMIT = 64 * 1024


def _bytes(raw: dict[str, object]) -> bytes:
    return orjson.dumps(raw)


def test_valid_record_decodes() -> None:
    event = decode_event(b"alice", _bytes(raw_request("r-1", [("db", "prod")])), LIMIT)
    assert event.type == "request.created"
    assert event.subject.id == "alice"


@pytest.mark.parametrize(
    ("key", "value", "error_class"),
    [
        (None, b"{}", "missing-key"),
        (b"", b"{}", "missing-key"),
        (b"alice", None, "missing-value"),
        (b"alice", b"x" * (LIMIT + 1), "oversized"),
        (b"alice", b"{not json", "invalid-json"),
        (b"alice", b"[1, 2]", "schema-violation"),
        (b"alice", b'{"type": "request.created"}', "schema-violation"),
        (b"alice", b'{"type": "no.such.type", "event_id": "e", "at": "2026-11-23T10:00:00Z",'
                   b' "subject": {"id": "alice"}}', "schema-violation"),
        (b"bob", _bytes(raw_request("r-1", [("db", "prod")])), "key-mismatch"),
        # Valid RFC 3339, but before year 1 in UTC (found by tests/faults fuzzing).
        (b"alice", _bytes(raw_request("r-1", [("db", "prod")], at="0001-01-01T00:00:00+01:00")),
         "schema-violation"),
        (b"alice", _bytes(raw_request("r-1", [("db", "prod")], at="9999-12-31T23:59:59-01:00")),
         "schema-violation"),
    ],
)
def test_bad_records_name_their_class(key: bytes | None, value: bytes | None,
                                      error_class: str) -> None:
    with pytest.raises(InputError) as caught:
        decode_event(key, value, LIMIT)
    assert caught.value.error_class == error_class


def test_schema_violation_names_the_field() -> None:
    raw = raw_request("r-1", [("db", "prod")])
    raw["resources"][0]["sensitivity"] = "extreme"  # type: ignore[index]
    with pytest.raises(InputError) as caught:
        decode_event(b"alice", _bytes(raw), LIMIT)
    assert "resources.0.sensitivity" in caught.value.message


def test_stored_state_round_trips_and_garbage_is_an_error() -> None:
    stored = StoredSubject(tenants={"acme": SubjectState(applied=("e-1",))})
    assert decode_stored(encode_stored(stored)) == stored
    assert decode_stored(None) is None
    with pytest.raises(InputError) as caught:
        decode_stored(b'{"tenants": 7}')
    assert caught.value.error_class == "state-unreadable"


moment = st.integers(0, 10**11).map(lambda us: T0 + timedelta(microseconds=us))
RESOURCES = (Resource(id="db", env="prod"),)


@st.composite
def subject_states(draw: st.DrawFn) -> SubjectState:
    """States with any mix of the things that run out (and of those that do not)."""
    few = st.integers(0, 3)
    return SubjectState(
        grants=tuple(Grant(f"r-{n}", RESOURCES, T0, draw(moment)) for n in range(draw(few))),
        pending=tuple(Pending(f"p-{n}", RESOURCES, T0, draw(moment), 60)
                      for n in range(draw(few))),
        locked_until=draw(st.none() | moment),
        request_locks=tuple(RequestLock(f"l-{n}", draw(moment)) for n in range(draw(few))),
        sessions=tuple(Session(f"s-{n}", "r-0", "db", T0, draw(st.none() | moment))
                       for n in range(draw(few))),
        recent_requests=(draw(moment),),
        # Marks are kept in expiry order (policy.ledger), as stored values hold them.
        requested=tuple(Mark(f"{n:016x}", until)
                        for n, until in enumerate(sorted(draw(st.lists(moment, max_size=3))))),
        signed=tuple(Mark(f"{n:016x}", until)
                     for n, until in enumerate(sorted(draw(st.lists(moment, max_size=3))))),
    )


@given(st.dictionaries(st.sampled_from(["default", "acme", "globex"]), subject_states()))
def test_stored_deadlines_agree_with_next_deadline(tenants: dict[str, SubjectState]) -> None:
    value = encode_stored(StoredSubject(tenants=tenants))
    assert stored_deadlines(value) == {tenant: next_deadline(state)
                                       for tenant, state in tenants.items()}


@pytest.mark.parametrize("expires_at", ["2026-11-23T11:00:00+01:00", "2026-11-23T10:00:00.000Z",
                                        "2026-11-23T10:00:00.000000Z"])
def test_stored_deadlines_read_any_offset_as_utc(expires_at: str) -> None:
    value = orjson.dumps({"tenants": {"acme": {"grants": [
        {"request_id": "r-1", "resources": [{"id": "db", "env": "prod"}],
         "granted_at": "2026-11-23T09:00:00Z", "expires_at": expires_at}]}}})
    (deadline,) = stored_deadlines(value).values()
    assert deadline == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert deadline.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [
    b"{not json",
    b"[]",
    b'{"tenants": 7}',
    b'{"tenants": {"acme": {"locked_until": 1700000000}}}',  # a number is not a time
    b'{"tenants": {"acme": {"locked_until": "2026-11-23T10:00:00"}}}',  # no offset
    b'{"tenants": {"acme": {"grants": [{"request_id": "r-1"}]}}}',  # no expires_at
])
def test_stored_deadlines_refuse_what_decode_stored_refuses(value: bytes) -> None:
    with pytest.raises(InputError) as caught:
        stored_deadlines(value)
    assert caught.value.error_class == "state-unreadable"


def test_stored_deadlines_of_another_state_version_go_through_the_model() -> None:
    # The model ignores the version today; whatever it makes of one, the fast path agrees.
    value = b'{"v": 2, "tenants": {"acme": {"locked_until": "2026-11-23T10:00:00Z"}}}'
    full = decode_stored(value)
    assert full is not None
    assert stored_deadlines(value) == {"acme": next_deadline(full.tenants["acme"])}


def test_dead_letter_headers_follow_the_contract() -> None:
    headers = dict(dead_letter_headers("jit.requests", 3, 1234, "invalid-json", "bad"))
    assert headers == {
        "source.topic": b"jit.requests",
        "source.partition": b"3",
        "source.offset": b"1234",
        "error.class": b"invalid-json",
        "error.message": b"bad",
    }


T = datetime(2026, 11, 23, 10, 0, 0, 714523, tzinfo=UTC)


def test_tick_round_trips_at_full_precision() -> None:
    tick = decode_command(b"alice", encode_tick(T, b"alice", "acme"))
    assert tick.at == T, "a tick rounded to milliseconds would miss its deadline"
    assert (tick.tenant, tick.subject.id, tick.type) == ("acme", "alice", "clock.tick")


@pytest.mark.parametrize(("key", "value"), [
    (b"bob", encode_tick(T, b"alice", "acme")),
    (b"alice", b'{"type": "request.created"}'),
    (b"alice", None),
])
def test_bad_commands_are_refused(key: bytes, value: bytes | None) -> None:
    with pytest.raises(InputError) as caught:
        decode_command(key, value)
    assert caught.value.error_class == "invalid-command"
