"""The RESP (Redis serialization protocol) encoding of the sink's commands.

The appender writes its appends to the socket as packed RESP itself: redis-py's
packing of each command cost more than Redis spends appending the entry.
"""

from __future__ import annotations

__all__ = ["bulk", "command"]


def bulk(part: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(part), part)


def command(*parts: bytes) -> bytes:
    """One command as RESP."""
    return b"*%d\r\n%b" % (len(parts), b"".join(map(bulk, parts)))

