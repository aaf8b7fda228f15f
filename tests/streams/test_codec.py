"""The edge decoder: every way a record can be bad maps to one dead-letter class."""

from __future__ import annotations

import orjson
import pytest

from schemas.errors import InputError
from schemas.state import StoredSubject, SubjectState
from streams.codec import dead_letter_headers, decode_event, decode_stored, encode_stored
from tests.factories import raw_request

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


def test_dead_letter_headers_follow_the_contract() -> None:
    headers = dict(dead_letter_headers("jit.requests", 3, 1234, "invalid-json", "bad"))
    assert headers == {
        "source.topic": b"jit.requests",
        "source.partition": b"3",
        "source.offset": b"1234",
        "error.class": b"invalid-json",
        "error.message": b"bad",
    }
