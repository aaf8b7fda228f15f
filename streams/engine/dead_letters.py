"""Dead letters every producer accepts: a dead letter the worker's producer refuses fails
its whole batch, which is then never acknowledged (its partition stops). The contract's
headers are :func:`streams.engine.codec.dead_letter_headers`; CONTRACT, "Dead letters of
records with neither key nor value (2026-12-07)"."""

from __future__ import annotations

__all__ = ["DEAD_LETTER_MAX_BYTES", "KEY_OMITTED_HEADER", "NULL_RECORD", "VALUE_NULL_HEADER",
           "VALUE_OMITTED_HEADER", "dead_letter_limit", "dead_letter_record"]

NULL_RECORD = "null-record"
"""The dead-letter error class of an input record with neither key nor value (a tombstone
without a key, which the Java producer and kcat can write)."""

VALUE_NULL_HEADER = "source.value-null"
"""Dead-letter header (value ``true``) of a dead letter whose input record had neither key
nor value: it carries an empty value instead, since producers refuse a record with neither
(aiokafka's ``send`` asserts it), and a refused dead letter fails its whole batch."""

VALUE_OMITTED_HEADER = "source.value-omitted"
"""Dead-letter header of a dead letter whose input record was too large to send again with
the dead-letter headers (:func:`dead_letter_limit`): it carries an empty value,
and this header the original value's length in bytes (decimal)."""

DEAD_LETTER_MAX_BYTES = 1_000_000
"""The most bytes a dead letter takes, headers and framing included, however much the
worker's producer sends: the dead-letter topic keeps the broker's default
``message.max.bytes`` (1,048,588), and a dead letter the broker refuses fails its batch as
one the producer refuses does. (The producer sends more since stored values at
``JITWATCH_MAX_STORED_BYTES`` go out with their key: ``schemas.state.STORED_RECORD_HEADROOM``.)"""

KEY_OMITTED_HEADER = "source.key-omitted"
"""Dead-letter header of a dead letter whose input record's key alone was too large (as
:data:`VALUE_OMITTED_HEADER`, for the key): it carries no key, and this header the original
key's length in bytes."""


def dead_letter_limit(producer_max_request_size: int) -> int:
    """The bound the worker gives :func:`dead_letter_record`: what both its producer (its
    ``max_request_size``) and a topic at the broker's default limit take."""
    return min(producer_max_request_size, DEAD_LETTER_MAX_BYTES)


def dead_letter_record(key: bytes | None, value: bytes | None,
                       headers: list[tuple[str, bytes]], max_bytes: int | None = None
                       ) -> tuple[bytes | None, bytes | None]:
    """The key and value of the dead letter of a record with ``key`` and ``value``, whose
    dead-letter headers are ``headers``: both unchanged, except where the dead letter could
    never be sent (a refused dead letter fails its whole batch, which is then never
    acknowledged). A record with neither key nor value (no producer sends one) gets an empty
    value and :data:`VALUE_NULL_HEADER`. One whose dead letter would be over ``max_bytes``
    (:func:`dead_letter_limit`; the broker takes input records a little larger)
    gets an empty value and :data:`VALUE_OMITTED_HEADER`, and if that is not enough no key
    and :data:`KEY_OMITTED_HEADER`. Headers are appended to ``headers``."""
    if key is None and value is None:
        headers.append((VALUE_NULL_HEADER, b"true"))
        return None, b""
    if max_bytes is None or _record_bytes(key, value, headers) <= max_bytes:
        return key, value
    if value:
        headers.append((VALUE_OMITTED_HEADER, str(len(value)).encode()))
        value = b""
    if key and _record_bytes(key, value, headers) > max_bytes:
        headers.append((KEY_OMITTED_HEADER, str(len(key)).encode()))
        key = None
    if key is None and value is None:  # a dropped key must not leave neither
        value = b""
    return key, value


_RECORD_OVERHEAD = 512
"""Bytes counted beyond a record's key, value and header bytes: Kafka's batch header (61)
and record framing (varints), with room to spare; aiokafka's own estimate is smaller."""


def _record_bytes(key: bytes | None, value: bytes | None,
                  headers: list[tuple[str, bytes]]) -> int:
    # An upper bound of what aiokafka's producer checks against max_request_size.
    return (_RECORD_OVERHEAD + len(key or b"") + len(value or b"")
            + sum(len(name.encode()) + len(data) + 10 for name, data in headers))
