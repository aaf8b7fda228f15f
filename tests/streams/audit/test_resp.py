"""The sink's own RESP encoding: byte for byte what redis-py would send."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from streams.audit.resp import bulk, command


def packed(*parts: bytes) -> bytes:
    """redis-py's encoding of a command, the reference."""
    return b"".join(Connection().pack_command(*parts))


def test_a_bulk_string_is_length_prefixed_and_binary_safe() -> None:
    assert bulk(b"") == b"$0\r\n\r\n"
    assert bulk(b"a\r\nb\x00") == b"$5\r\na\r\nb\x00\r\n"


@pytest.mark.parametrize("parts", [
    (b"WATCH", b"jitwatch:audit:p0"),
    (b"XREVRANGE", b"jitwatch:audit:p0", b"+", b"-", b"COUNT", b"1"),
    (b"SET", b"k", b"\xff\r\n" * 100),
])
def test_a_command_is_what_redis_py_sends(parts: tuple[bytes, ...]) -> None:
    assert command(*parts) == packed(*parts)
