"""The trusted fast reader of stored state agrees with pydantic's, and gives up otherwise."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import InputError
from schemas.events import Resource
from schemas.state import (
    Grant,
    Mark,
    Obligation,
    Pending,
    RequestLock,
    Session,
    StoredSubject,
    SubjectState,
)
from streams.engine.codec import decode_stored, encode_stored
from streams.engine.stored import _STATE, WRITTEN_MEMORY, read_stored, recall
from tests.factories import T0

moment = st.integers(-(10**12), 10**12).map(lambda us: T0 + timedelta(microseconds=us))
maybe = st.none() | moment
text = st.text(max_size=8)
ids = st.text(min_size=1, max_size=8)
resources = st.lists(st.builds(
    Resource, id=ids, env=ids, sensitivity=st.sampled_from(["low", "medium", "high", "critical"]),
    roles=st.lists(ids, max_size=2).map(tuple)), max_size=3).map(tuple)
counts = st.integers(0, 2**40)


def _many(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[tuple[object, ...]]:
    return st.lists(strategy, max_size=3).map(tuple)


states = st.builds(
    SubjectState,
    grants=_many(st.builds(Grant, text, resources, moment, moment, st.booleans(), counts,
                           maybe)),
    applied=_many(text),
    pending=_many(st.builds(Pending, text, resources, moment, moment, counts,
                            st.none() | counts, st.none() | text, counts, _many(text),
                            st.booleans())),
    locked_until=maybe,
    request_locks=_many(st.builds(RequestLock, text, moment)),
    recent_requests=_many(moment),
    break_glass_uses=_many(moment),
    seen=_many(text),
    sessions=_many(st.builds(Session, text, text, text, moment, maybe)),
    kind=st.sampled_from(["human", "workload", "agent"]),
    owner=st.none() | text,
    kind_fixed=st.booleans(),
    clock=maybe,
    ended=_many(text),
    requested=_many(st.builds(Mark, text, moment)),
    signed=_many(st.builds(Mark, text, moment)),
    forget_at=maybe,
    obligations=_many(st.builds(Obligation, text, resources, moment, moment, text, maybe)),
)


def test_every_state_field_has_a_reader() -> None:
    assert set(_STATE) == {field.name for field in dataclasses.fields(SubjectState)}


@given(st.dictionaries(st.text(max_size=6), states, max_size=3))
def test_fast_reader_agrees_with_validation(tenants: dict[str, SubjectState]) -> None:
    value = StoredSubject(tenants=tenants).model_dump_json(exclude_defaults=True).encode()
    validated = StoredSubject.model_validate_json(value)
    fast = read_stored(value)
    assert fast is not None, value
    assert fast == validated
    assert fast.model_fields_set == validated.model_fields_set
    assert decode_stored(value) == validated  # not remembered: read
    assert encode_stored(fast) == value
    assert decode_stored(value) is fast  # remembered


GRANT = {"request_id": "r-1", "resources": [{"id": "db", "env": "prod"}],
         "granted_at": "2026-11-23T09:00:00Z", "expires_at": "2026-11-23T10:00:00Z"}


@pytest.mark.parametrize("value", [
    {"v": 2, "tenants": {"acme": {"grants": [GRANT]}}},  # another version
    {"v": "1", "tenants": {}},
    {"v": 1, "tenants": {}, "later": True},  # a top-level field this reader does not know
    {"tenants": {"acme": {"grants": [GRANT], "later": 1}}},  # nor in a state
    {"tenants": {"acme": {"grants": [{**GRANT, "later": 1}]}}},  # nor in a grant
    {"tenants": {"acme": {"grants": [{**GRANT, "resources": [
        {"id": "db", "env": "prod", "later": 1}]}]}}},  # nor in a resource
    {"tenants": {"acme": {"locked_until": "2026-11-23T11:00:00+01:00"}}},  # not UTC as written
    {"tenants": {"acme": {"locked_until": "2026-11-23T10:00:00"}}},  # no offset
    {"tenants": {"acme": {"locked_until": 1700000000}}},  # a number
    {"tenants": {"acme": {"applied": "e-1"}}},  # a string where a list belongs
    {"tenants": {"acme": {"grants": [{**GRANT, "extensions": "1"}]}}},  # lax types
    {"tenants": {"acme": {"grants": [{**GRANT, "post_review": 1}]}}},
    {"tenants": {"acme": {"kind": "robot"}}},
    {"tenants": {"acme": {"grants": [{"request_id": "r-1"}]}}},  # fields missing
    {"tenants": {"acme": {"requested": [{"mark": "m"}]}}},
    {"tenants": {"acme": {"grants": [{**GRANT, "resources": [{"id": "", "env": "prod"}]}]}}},
    {"tenants": 7},
    [],
])
def test_fast_reader_gives_up_on_anything_else(value: object) -> None:
    raw = orjson.dumps(value)
    assert read_stored(raw) is None
    try:  # and decode_stored says what validation says
        expected: StoredSubject | str = StoredSubject.model_validate_json(raw)
    except ValueError:
        expected = "state-unreadable"
    try:
        got: StoredSubject | str | None = decode_stored(raw)
    except InputError as exc:
        got = exc.error_class
    assert got == expected


@pytest.mark.parametrize("raw", [b"", b"{not json", b"\xff\xfe", b"null", b'"text"'])
def test_garbage_is_unreadable(raw: bytes) -> None:
    assert read_stored(raw) is None
    with pytest.raises(InputError) as caught:
        decode_stored(raw)
    assert caught.value.error_class == "state-unreadable"


def test_bytes_just_encoded_read_back_as_that_value() -> None:
    stored = StoredSubject(tenants={"acme": SubjectState(applied=("e-1",))})
    value = encode_stored(stored)
    assert recall(value) is stored
    assert decode_stored(value) is stored
    assert recall(value + b" ") is None  # other bytes: decoded, never guessed


def test_written_memory_is_bounded() -> None:
    for number in range(WRITTEN_MEMORY + 10):
        encode_stored(StoredSubject(tenants={"acme": SubjectState(applied=(f"e-{number}",))}))
    first = orjson.dumps({"tenants": {"acme": {"applied": ["e-0"]}}})
    last = orjson.dumps({"tenants": {"acme": {"applied": [f"e-{WRITTEN_MEMORY + 9}"]}}})
    assert recall(first) is None
    assert recall(last) is not None
    assert decode_stored(first) == StoredSubject(tenants={"acme": SubjectState(applied=("e-0",))})
