"""The trusted fast reader of stored subject state (issue M).

Every event reads its subject's stored value back; pydantic's validation of a typical value
(about 1.4 kB: grants, applied marks, request-id marks) cost about 30 µs, most of it a
Python call per stored time. The values are ones :func:`streams.engine.codec.encode_stored`
wrote, so this reader builds the same dataclasses straight from ``orjson.loads`` for the
one shape that encoder writes (version :data:`~schemas.state.STORED_STATE_VERSION`, known
fields, exact JSON types, times as ``...Z``), and gives up (None) on anything else: another
version, an unknown field, a missing one, a wrong type. Then
:func:`streams.engine.codec.decode_stored` validates the value in full, and has the last
word on whether it is readable. Resources, the one nested pydantic model, are validated in
full once per distinct resource and shared (they are immutable), since few resources recur
in many grants. tests/streams/engine/test_stored.py checks that both readers agree.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, get_args

import orjson
from pydantic import TypeAdapter

from schemas._base import trusted_model
from schemas.events import Resource, SubjectKind
from schemas.state import (
    STORED_STATE_VERSION,
    Grant,
    Mark,
    Obligation,
    Pending,
    RequestLock,
    Session,
    StoredSubject,
    SubjectState,
)

__all__ = ["WRITTEN_MEMORY", "read_stored", "recall", "remember"]


class _UnexpectedError(Exception):
    """A value this reader does not take: the validating reader decides."""


def _str(value: Any) -> str:
    if type(value) is not str:
        raise _UnexpectedError
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise _UnexpectedError
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _UnexpectedError
    return value


def _time(value: Any) -> datetime:
    # fromisoformat reads the form pydantic writes a UTC time in ("...Z"); any other
    # offset, or none, is left to validation.
    moment = _parse(value)  # TypeError for a non-string: caught by read_stored
    if moment.tzinfo is not UTC:
        raise _UnexpectedError
    return moment


_parse = datetime.fromisoformat


def _optional(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else read(value)


def _strings(value: Any) -> tuple[str, ...]:
    if type(value) is not list:
        raise _UnexpectedError
    for item in value:
        if type(item) is not str:
            raise _UnexpectedError
    return tuple(value)


def _times(value: Any) -> tuple[datetime, ...]:
    if type(value) is not list:
        raise _UnexpectedError
    times = tuple([_parse(item) for item in value])
    for moment in times:
        if moment.tzinfo is not UTC:
            raise _UnexpectedError
    return times


def _marks(value: Any) -> tuple[Mark, ...]:
    # The most frequent records (request-id and signed-event marks): read positionally.
    if type(value) is not list:
        raise _UnexpectedError
    marks = []
    for item in value:
        if type(item) is not dict or len(item) != 2:
            raise _UnexpectedError
        mark, until = item["mark"], _parse(item["until"])
        if type(mark) is not str or until.tzinfo is not UTC:
            raise _UnexpectedError
        marks.append(Mark(mark, until))
    return tuple(marks)


_RESOURCE: TypeAdapter[Resource] = TypeAdapter(Resource)
_RESOURCES: dict[tuple[Any, ...], Resource] = {}
_RESOURCE_CACHE = 4096
"""Distinct resources kept validated; past that the cache starts again (bounded memory)."""


def _resource(value: Any) -> Resource:
    if type(value) is not dict:
        raise _UnexpectedError
    key = tuple([(name, tuple(item) if type(item) is list else item)
                 for name, item in value.items()])
    resource = _RESOURCES.get(key)
    if resource is None:
        if set(value) - set(Resource.model_fields):
            raise _UnexpectedError  # an unknown field: validation decides, not this cache
        resource = _RESOURCE.validate_python(value)  # ValidationError: unreadable, fall back
        if len(_RESOURCES) >= _RESOURCE_CACHE:
            _RESOURCES.clear()
        _RESOURCES[key] = resource
    return resource


def _resource_list(value: Any) -> tuple[Resource, ...]:
    if type(value) is not list:
        raise _UnexpectedError
    return tuple([_resource(item) for item in value])


def _kind(value: Any) -> str:
    if value not in _KINDS or type(value) is not str:
        raise _UnexpectedError
    return value


_KINDS = frozenset(get_args(SubjectKind))

_Reader = Callable[[Any], Any]


def _records(cls: type[Any], fields: dict[str, _Reader]) -> _Reader:
    """A reader of a JSON list of ``cls`` objects with these fields (a missing required
    field fails the dataclass's own constructor; an unknown one is a KeyError)."""

    def read(value: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise _UnexpectedError
        out = []
        for item in value:
            if type(item) is not dict:
                raise _UnexpectedError
            out.append(cls(**{name: fields[name](raw) for name, raw in item.items()}))
        return tuple(out)

    return read


_STATE: dict[str, _Reader] = {
    "grants": _records(Grant, {
        "request_id": _str, "resources": _resource_list, "granted_at": _time,
        "expires_at": _time, "post_review": _bool, "extensions": _int,
        "notice_at": _optional(_time)}),
    "applied": _strings,
    "pending": _records(Pending, {
        "request_id": _str, "resources": _resource_list, "requested_at": _time,
        "pending_until": _time, "ttl_s": _int, "requested_ttl_s": _optional(_int),
        "request_digest": _optional(_str), "needed": _int, "approvals": _strings,
        "extends": _bool}),
    "locked_until": _optional(_time),
    "request_locks": _records(RequestLock, {"request_id": _str, "until": _time}),
    "recent_requests": _times,
    "break_glass_uses": _times,
    "seen": _strings,
    "sessions": _records(Session, {
        "session_id": _str, "request_id": _str, "resource": _str, "started_at": _time,
        "held_until": _optional(_time)}),
    "kind": _kind,
    "owner": _optional(_str),
    "kind_fixed": _bool,
    "clock": _optional(_time),
    "ended": _strings,
    "requested": _marks,
    "signed": _marks,
    "forget_at": _optional(_time),
    "obligations": _records(Obligation, {
        "request_id": _str, "resources": _resource_list, "granted_at": _time, "due": _time,
        "request_digest": _str, "deadline": _optional(_time)}),
}
"""One reader per :class:`SubjectState` field (tests check the names match)."""


def read_stored(value: bytes) -> StoredSubject | None:
    """The stored value as :meth:`StoredSubject.model_validate_json` reads it, or None
    when it is not in the shape :func:`streams.engine.codec.encode_stored` writes today
    (then only full validation may say what it is)."""
    try:
        data = orjson.loads(value)
        if type(data) is not dict or not set(data) <= {"v", "tenants"} \
                or data.get("v", STORED_STATE_VERSION) != STORED_STATE_VERSION \
                or type(data.get("v", STORED_STATE_VERSION)) is not int:
            return None
        raw = data.get("tenants", {})
        if type(raw) is not dict:
            return None
        tenants = {}
        for tenant, state in raw.items():
            if type(state) is not dict:
                return None
            tenants[tenant] = SubjectState(**{name: _STATE[name](item)
                                              for name, item in state.items()})
    except Exception:  # noqa: BLE001 - any surprise at all: the validating reader decides
        return None
    return trusted_model(StoredSubject, {"v": STORED_STATE_VERSION, "tenants": tenants},
                         set(data))


WRITTEN_MEMORY = 2048
"""How many values :func:`remember` keeps: the ones encoded last (the bytes and the
immutable value they came from), about 10 kB each for a typical subject."""

_WRITTEN: OrderedDict[bytes, StoredSubject] = OrderedDict()
"""An OrderedDict, not a dict: dropping a dict's first key leaves a hole that every later
``next(iter(...))`` walks past until the dict is next resized (1.8 µs per value noted
against 0.25, issue M)."""


def remember(value: bytes, stored: StoredSubject) -> None:
    """Note that ``stored`` encodes to ``value`` (:func:`streams.engine.codec.encode_stored`
    just made it), so reading those bytes back needs no decoding (:func:`recall`)."""
    _WRITTEN[value] = stored
    if len(_WRITTEN) > WRITTEN_MEMORY:
        _WRITTEN.popitem(last=False)  # the oldest noted: insertion order


def recall(value: bytes) -> StoredSubject | None:
    """The value that encoded to exactly these bytes, if it is among the last
    :data:`WRITTEN_MEMORY` encoded; the worker mostly reads back what it wrote a batch or
    two before. Safe to share: stored values are immutable, and decoding bytes that
    :func:`streams.engine.codec.encode_stored` wrote gives an equal value
    (tests/streams/engine/test_stored.py)."""
    return _WRITTEN.get(value)
