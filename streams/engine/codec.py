"""Every conversion between bytes and models: the edge of the application layer.

Input events (records and replay lines), stored subject state (and the fast read of its
deadlines at recovery), dead-letter headers, the expiry timer's tick commands and the
decisions written out. Each is hot (once per event or per stored subject), so each is one
plain function with no indirection.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from policy import next_deadline
from schemas._base import UtcDatetime, format_time
from schemas.canonical import canonical_id
from schemas.decisions import Decision
from schemas.errors import InputError
from schemas.events import INPUT_EVENT, ClockTick, InputEvent
from schemas.notices import Notice
from schemas.state import STORED_STATE_VERSION, StoredSubject
from streams.engine.dead_letters import NULL_RECORD
from streams.engine.stored import read_stored, recall, remember

__all__ = [
    "BROKER_TIME",
    "canonical_key",
    "dead_letter_headers",
    "decode_command",
    "decode_event",
    "decode_stored",
    "encode_decision",
    "encode_notice",
    "encode_stored",
    "encode_tick",
    "parse_event",
    "parse_line",
    "record_of_line",
    "replay_line",
    "stored_deadlines",
    "subject_key",
]


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def subject_key(subject_id: str) -> bytes:
    """The key of a subject's state, of its expiry ticks and of the partition that owns it:
    its canonical id (:func:`schemas.canonical.canonical_id`) in UTF-8, so
    ``Dev@example.com`` and ``dev\\u200b@example.com`` are the one subject
    ``dev@example.com`` (issue H). An ASCII lower-case id is its own key."""
    return canonical_id(subject_id).encode("utf-8")


def decode_event(key: bytes | None, value: bytes | None, max_bytes: int) -> InputEvent:
    """Validate one input record.

    The key must name the subject: its canonical form must be the canonical form of
    ``subject.id`` (:func:`subject_key`). That is what puts one subject's events, and its
    state, on one partition.

    Raises:
        InputError: with ``error_class`` one of ``null-record``, ``missing-key``,
            ``missing-value``, ``oversized``, ``invalid-json``, ``schema-violation``,
            ``key-mismatch``.
    """
    if key is None and value is None:
        raise InputError(NULL_RECORD, "record has neither key nor value (a tombstone "
                         "without a key); the key must be the subject id")
    if not key:
        raise InputError("missing-key", "record has no key; the key must be the subject id")
    if value is None:
        raise InputError("missing-value", "record has no value")
    event = parse_event(value, max_bytes)
    raw = event.subject.id.encode("utf-8")
    if key != raw and canonical_key(key) != subject_key(event.subject.id):
        raise InputError(
            "key-mismatch",
            f"record key {key[:80]!r} is not subject.id {event.subject.id[:80]!r}; "
            "producers must key records by subject id",
        )
    return event


def canonical_key(key: bytes) -> bytes | None:
    """The canonical form of a record key (:func:`subject_key` of its text); None for a key
    that is not UTF-8, which names no subject."""
    try:
        return subject_key(key.decode("utf-8"))
    except UnicodeDecodeError:
        return None  # no UTF-8 text names a subject


def parse_event(value: bytes, max_bytes: int) -> InputEvent:
    """Validate one event's bytes (a record value or a line of a replay file).

    Raises:
        InputError: ``oversized``, ``invalid-json`` or ``schema-violation``.
    """
    return _validate(_load(value, max_bytes))


BROKER_TIME = "broker_time"
"""The replay line field that carries the time the broker appended the event (issue H)."""

_BROKER_TIME: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)


def parse_line(value: bytes, max_bytes: int) -> tuple[InputEvent, datetime | None]:
    """Validate one line of a replay file: an event, and the broker's time for it when the
    line carries one (top-level ``broker_time``, RFC 3339: the input record's LogAppendTime
    timestamp), else None.

    Only a replay reads ``broker_time``: in the stream the broker's own record timestamp is
    the time, and a ``broker_time`` inside a record's value is an ignored extension field.
    ``max_bytes`` applies to the line without its ``broker_time`` member (the record as the
    stream read it, :func:`replay_line`).

    Raises:
        InputError: ``oversized``, ``invalid-json`` or ``schema-violation`` (also for a
            ``broker_time`` that is not an RFC 3339 time with an offset).
    """
    if len(value) > max_bytes + _STAMP_ROOM:
        raise InputError("oversized", f"value has {len(value)} bytes, limit is {max_bytes} "
                         "(max_event_bytes)")
    data = _load(value, max_bytes + _STAMP_ROOM)
    received = None
    stamp = 0
    if isinstance(data, dict) and BROKER_TIME in data:
        raw = data.pop(BROKER_TIME)
        try:
            received = _BROKER_TIME.validate_python(raw)
        except ValidationError as exc:
            raise InputError("schema-violation", f"{BROKER_TIME}: {_describe(exc)}") from exc
        stamp = len(BROKER_TIME) + 4 + len(orjson.dumps(raw))  # ,"broker_time":"..."
    if len(value) - stamp > max_bytes:  # the record's own size, as the stream checks it
        raise InputError("oversized", f"value has {len(value) - stamp} bytes, limit is "
                         f"{max_bytes} (max_event_bytes)")
    return _validate(data), received


def replay_line(value: bytes | None, broker_time: datetime) -> bytes | None:
    """The replay line for an input record: the record's own bytes with a ``broker_time``
    member (the record's broker time) appended, or None when the value is not a JSON object
    (the stream dead-letters such a record, a replay has nothing to decide).

    Not re-encoded, so the line is the record the stream read: its size counts as the
    record's (:func:`parse_line` leaves the appended member out), escapes and all. Appended
    last, it wins over a ``broker_time`` the producer put in the value (a claim): the last
    of duplicate keys is the one JSON readers keep.
    """
    try:
        data = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or value is None:
        return None
    stamp = orjson.dumps(format_time(broker_time))
    if not data:
        return b'{"' + BROKER_TIME.encode() + b'":' + stamp + b"}"
    return value.rstrip()[:-1] + b',"' + BROKER_TIME.encode() + b'":' + stamp + b"}"


def record_of_line(line: bytes) -> bytes:
    """The record a replay line was exported from: the line without the ``broker_time``
    member :func:`replay_line` appended (and without surrounding whitespace, which the
    redelivery mark leaves out too); any other line as it is.

    The redelivery mark hashes the record's own bytes (policy.decide.applied_mark), so a
    replay of an export stores the marks the stream stored, and ends with its state.
    """
    stripped = line.strip()
    at = stripped.rfind(b'"' + BROKER_TIME.encode() + b'":')
    if at <= 0 or not stripped.endswith(b'"}'):
        return line
    try:
        stamp = orjson.loads(stripped[at + len(BROKER_TIME) + 3:-1])
    except orjson.JSONDecodeError:
        return line
    if not isinstance(stamp, str) or not stripped.endswith(orjson.dumps(stamp) + b"}"):
        return line
    if at == 1:  # the record was {}
        return b"{}"
    return stripped[:at - 1] + b"}" if stripped[at - 1:at] == b"," else line


_STAMP_ROOM = 64
"""Bytes a replay line may carry beyond ``max_bytes`` for its ``broker_time`` member."""


def _load(value: bytes, max_bytes: int) -> Any:
    if len(value) > max_bytes:
        raise InputError(
            "oversized", f"value has {len(value)} bytes, limit is {max_bytes} (max_event_bytes)"
        )
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InputError("invalid-json", f"value is not JSON: {exc}") from exc


def _validate(data: Any) -> InputEvent:
    try:
        return INPUT_EVENT.validate_python(data)
    except ValidationError as exc:
        raise InputError("schema-violation", _describe(exc)) from exc


def decode_stored(value: bytes | None) -> StoredSubject | None:
    """Read a table value; an unreadable one is an error, never an empty state.

    The shape :func:`encode_stored` writes is read by the trusted fast reader
    (:mod:`streams.engine.stored`); anything else is validated in full.

    Raises:
        InputError: ``state-unreadable`` so the event goes to the dead letter topic.
    """
    if value is None:
        return None
    fast = recall(value)  # bytes this process encoded: that very value
    if fast is None:
        fast = read_stored(value)  # the shape encode_stored writes, without pydantic
    if fast is not None:
        return fast
    try:
        return StoredSubject.model_validate_json(value)
    except ValidationError as exc:
        raise InputError("state-unreadable", f"stored state is unreadable: {_describe(exc)}") \
            from exc


def stored_deadlines(value: bytes) -> dict[str, datetime | None]:
    """Each tenant's next deadline in a table value, as ``next_deadline`` gives it.

    Recovery indexes the deadline of every subject in the table: validating a million
    values with :class:`StoredSubject` took about 20 µs each, reading just the times from
    the JSON about 3 µs. The rest of the value is not checked here (an event or tick for
    the subject still reads it in full). Anything this fast path does not expect (another
    state version, a time without an offset, a wrong type) goes through
    :func:`decode_stored`, which has the last word.

    Raises:
        InputError: ``state-unreadable``, as :func:`decode_stored`.
    """
    try:
        stored = orjson.loads(value)
        if stored.get("v", STORED_STATE_VERSION) == STORED_STATE_VERSION:
            tenants: Mapping[str, Any] = stored.get("tenants", {})
            return {tenant: _earliest(state) for tenant, state in tenants.items()}
    except (orjson.JSONDecodeError, AttributeError, KeyError, OverflowError, TypeError,
            ValueError):
        pass
    full = decode_stored(value)
    assert full is not None  # decode_stored gives None only for None
    return {tenant: next_deadline(state) for tenant, state in full.tenants.items()}


_DEADLINES = (("grants", "expires_at", True), ("pending", "pending_until", True),
              ("request_locks", "until", True), ("sessions", "held_until", False),
              ("obligations", "deadline", False))
"""(list, time field, required) of the times ``policy.next_deadline`` takes the
minimum of, besides ``locked_until`` and the first of each list of marks (kept in expiry
order); tests/streams/engine/test_codec.py checks the two agree."""

_MARKS = ("requested", "signed")


def _earliest(state: Mapping[str, Any]) -> datetime | None:
    # Loops rather than lists and min(): this runs for every subject of a restart.
    earliest = None if state.get("locked_until") is None else _utc(state["locked_until"])
    for name, field, required in _DEADLINES:
        for item in state.get(name, ()):
            text = item[field] if required else item.get(field)
            if text is not None:
                moment = _utc(text)
                if earliest is None or moment < earliest:
                    earliest = moment
    for name in _MARKS:
        marks = state.get(name)
        if marks:
            moment = _utc(marks[0]["until"])
            if earliest is None or moment < earliest:
                earliest = moment
    if earliest is None and state.get("forget_at") is not None and not state.get("obligations"):
        return _utc(state["forget_at"])  # nothing live: when it is forgotten
    return earliest


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)  # TypeError for a number: not a stored time
    if moment.tzinfo is UTC:
        return moment  # how encode_stored writes every time
    if moment.tzinfo is None:
        raise ValueError("stored time without an offset")
    return moment.astimezone(UTC)


def encode_stored(stored: StoredSubject) -> bytes:
    """Encode a table value compactly (defaults left out keep state small); the value is
    remembered against its bytes for :func:`decode_stored`."""
    value = stored.model_dump_json(exclude_defaults=True).encode("utf-8")
    remember(value, stored)
    return value


def dead_letter_headers(
    topic: str, partition: int, offset: int, error_class: str, message: str
) -> list[tuple[str, bytes]]:
    """The contract's dead-letter headers; the message is capped to keep records small."""
    return [
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
        ("error.class", error_class.encode()),
        ("error.message", message[:2000].encode("utf-8", "replace")),
    ]


def encode_tick(deadline: datetime, key: bytes, tenant: str) -> bytes:
    """A tick command for one subject at one deadline (kind and owner come from state)."""
    return orjson.dumps({
        "type": "clock.tick",
        "event_id": f"tick:{format_time(deadline)}",
        # Full precision: a tick rounded down to milliseconds would fall just short of
        # the deadline it is for and end nothing.
        "at": deadline.isoformat(),
        "tenant": tenant,
        "subject": {"id": key.decode("utf-8")},
    })


def decode_command(key: bytes | None, value: bytes | None) -> ClockTick:
    """Validate a command record; only the watcher writes the commands topic.

    Raises:
        InputError: ``invalid-command`` for anything but a well-formed tick keyed by its
            subject.
    """
    try:
        tick = ClockTick.model_validate_json(value or b"")
    except ValueError as exc:
        raise InputError("invalid-command", f"not a clock.tick command: {exc}") from exc
    if key != tick.subject.id.encode("utf-8"):
        raise InputError("invalid-command", "command key is not its subject id")
    return tick


def encode_notice(notice: Notice) -> bytes:
    """The notice's wire bytes (field order fixed by the model, so replays match)."""
    return notice.model_dump_json(by_alias=True).encode("utf-8")


def encode_decision(decision: Decision) -> bytes:
    """The decision's wire bytes (field order fixed by the model, so replays match)."""
    return decision.model_dump_json(by_alias=True).encode("utf-8")
