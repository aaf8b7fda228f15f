"""The appender's replies, read straight from its connection's socket.

The sink's appends are read here, compared with what an append that went well gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError

from streams.audit.chain import AuditTamperError, Head, entry_id
from streams.audit.transactions import Transaction

__all__ = ["Replies", "head_of"]

class Replies:
    """The replies on one of the sink's connections, read straight from its socket.

    An append's reply is compared with what one that went well gives in one step, and
    anything else (errors, a stale head) is parsed. Errors become redis-py's exceptions (a
    ``LOADING`` Redis is an outage, a ``NOPERM`` is not). RESP2 and RESP3.
    """

    def __init__(self, connection: Any) -> None:
        # redis-py has no public access to the socket; its parser reads no further than the
        # replies it was asked for, so after its handshake the stream is ours.
        reader = connection._reader  # noqa: SLF001  # see above
        if reader is None:
            raise RedisConnectionError("the Redis connection closed")
        self._reader: asyncio.StreamReader = reader
        self._timeout: float | None = connection.socket_timeout
        self._error: Callable[[str], Exception] = connection._parser.parse_error  # noqa: SLF001  # redis-py's error classes
        self._buffer = b""
        self._at = 0

    @property
    def drained(self) -> bool:
        """Nothing read beyond the replies taken (the connection can be reused)."""
        return self._at == len(self._buffer)

    async def _more(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):  # the client's socket_timeout
                data = await self._reader.read(1 << 16)
        except TimeoutError as exc:
            raise RedisTimeoutError("Timeout reading from Redis") from exc
        if not data:
            raise RedisConnectionError("Redis closed the connection")
        self._buffer = self._buffer[self._at:] + data
        self._at = 0

    async def _line(self) -> bytes:
        end = self._buffer.find(b"\r\n", self._at)
        while end < 0:
            await self._more()
            end = self._buffer.find(b"\r\n", self._at)
        line = self._buffer[self._at:end]
        self._at = end + 2
        return line

    async def reply(self) -> Any:
        """The next reply; an error reply is returned as the exception, not raised."""
        line = await self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return self._error(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"=", b"!"):  # bulk, verbatim and error strings
            size = int(rest)
            if size < 0:
                return None
            while len(self._buffer) - self._at < size + 2:
                await self._more()
            data = self._buffer[self._at:self._at + size]
            self._at += size + 2
            return self._error(data.decode(errors="replace")) if kind == b"!" else data
        if kind in (b"*", b"~", b">", b"%"):  # array, set, push, map (flattened)
            size = int(rest) * (2 if kind == b"%" else 1)
            return None if size < 0 else [await self.reply() for _ in range(size)]
        if kind == b"_":
            return None
        if kind in (b",", b"#", b"("):
            return rest
        raise InvalidResponse(f"unexpected Redis reply {line[:40]!r}")

    async def appended(self, transaction: Transaction) -> bool:
        """The reply of one append (``FCALL``): True when applied, False when refused for a
        stale head (``STALEHEAD``: the chain is not where the entries link to); raises any
        other error (nothing of that call was appended when the function refused it)."""
        expected = transaction.expected
        while len(self._buffer) - self._at < len(expected) and \
                expected.startswith(self._buffer[self._at:]):
            await self._more()
        if self._buffer.startswith(expected, self._at):
            self._at += len(expected)
            return True
        reply = await self.reply()
        if isinstance(reply, Exception):
            if str(reply).startswith("STALEHEAD"):
                return False
            raise reply
        raise InvalidResponse(f"the append function answered {reply!r}, not "
                              f"{transaction.entries}")


def head_of(reply: list[tuple[bytes, dict[bytes, bytes]]]) -> Head | None:
    """The chain head in an ``XREVRANGE <chain> + - COUNT 1`` reply, None for an empty chain.
    Raises :class:`AuditTamperError` for a head that is not a well-formed entry at its own
    offset's id (one appended past the function, e.g. a copy of the head far ahead, which
    would make every append fail as an error instead of a tamper stop)."""
    if not reply:
        return None
    stream_id, fields = reply[0]
    try:
        head = Head(int(fields[b"seq"]), int(fields[b"offset"]), fields[b"hash"].decode())
    except (KeyError, ValueError) as exc:
        raise AuditTamperError(f"the chain's head (stream id {stream_id.decode()}) is not an "
                               f"entry ({exc!r}): appended by someone else") from exc
    if stream_id.decode() != entry_id(head.offset):
        raise AuditTamperError(f"the chain's head at stream id {stream_id.decode()} says "
                               f"offset {head.offset}, whose id is {entry_id(head.offset)}: "
                               "appended by someone else")
    return head
