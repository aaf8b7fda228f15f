"""The appender's replies, read straight from its connection's socket.

A transaction gives two replies per entry, more than redis-py reads quickly (see
:class:`Replies`); here they are compared with what a transaction that went well gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError

from streams.audit.chain import Head
from streams.audit.transactions import Transaction

__all__ = ["Replies", "head_of"]

_QUEUED = b"+QUEUED\r\n"


class Replies:
    """The replies on one of the sink's connections, read straight from its socket.

    A transaction gives two replies per entry (``+QUEUED`` and the entry id in the ``EXEC``
    reply); redis-py reads one reply per call at ~5-10 µs each, more than Redis spends on
    the entry, so the queued and ``EXEC`` replies are compared with what a transaction that
    went well gives in one step, and anything else (errors, an ``EXEC`` refused) is parsed
    one by one. Errors become redis-py's exceptions (a ``LOADING`` Redis is an outage, a
    ``NOPERM`` is not). RESP2 and RESP3.
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

    async def head(self) -> Head | None:
        """The replies of ``WATCH`` and the ``XREVRANGE`` behind it: the chain's head."""
        for reply in (await self.reply(), found := await self.reply()):
            if isinstance(reply, Exception):
                raise reply
        return head_of([(entry, dict(zip(fields[::2], fields[1::2], strict=True)))
                         for entry, fields in found])

    async def transaction(self, transaction: Transaction) -> bool:
        """The replies of ``MULTI``, the queued commands and ``EXEC``: True when applied,
        False when Redis refused the ``EXEC`` (the chain changed after the ``WATCH``).
        Raises the first error (nothing was applied when a command was refused as it was
        queued; the entries before a command that failed in ``EXEC`` were)."""
        errors = [reply for reply in [await self.reply()] if isinstance(reply, Exception)]
        queued = len(transaction.commands)
        while queued:
            while queued and self._buffer.startswith(_QUEUED, self._at):
                self._at += len(_QUEUED)
                queued -= 1
            if queued:
                reply = await self.reply()
                if isinstance(reply, Exception):
                    errors.append(reply)
                queued -= 1
        expected = transaction.expected
        while len(self._buffer) - self._at < len(expected) and \
                expected.startswith(self._buffer[self._at:]):
            await self._more()
        if self._buffer.startswith(expected, self._at):
            self._at += len(expected)
            done = [await self.reply() for _ in range(len(transaction.commands)
                                                      - transaction.entries)]
        else:
            done = await self.reply()
        if isinstance(done, Exception):
            errors.append(done)  # EXECABORT comes after the error that caused it
        elif isinstance(done, list):
            errors += [reply for reply in done if isinstance(reply, Exception)]
        if errors:
            raise errors[0]
        return done is not None


def head_of(reply: list[tuple[bytes, dict[bytes, bytes]]]) -> Head | None:
    """The chain head in an ``XREVRANGE <chain> + - COUNT 1`` reply, None for an empty chain."""
    if not reply:
        return None
    fields = reply[0][1]
    return Head(int(fields[b"seq"]), int(fields[b"offset"]), fields[b"hash"].decode())
