"""Redis key names of the audit trail, and a Redis client per role (sink, notary, verifier).

Under the prefix ``P`` (``JITWATCH_AUDIT_KEY_PREFIX``):

- ``P:p<partition>``: the hash chain of one decisions partition (a Redis Stream),
- ``P:ix:<field>``: for ``subject``, ``request``, ``action`` and ``rule``, one sorted set
  of members ``<value> NUL <at in epoch ms, 13 digits> NUL <partition>:<offset>``, all with
  score 0, so ``ZRANGEBYLEX`` finds a value's entries in time order (:func:`index_member`),
- ``P:cp:p<partition>``: the notary's signed checkpoints of that chain (a Redis Stream).

The stack's ACLs (ops/stack) grant the sink ``P:p*`` and ``P:ix:*``, the notary read on
``P:p*`` and write on ``P:cp:*``, the verifier read only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal, cast

import redis.asyncio as aioredis
from pydantic import SecretStr

from streams.settings import Settings

__all__ = [
    "INDEXED_FIELDS",
    "Role",
    "checkpoint_key",
    "index_key",
    "index_member",
    "index_range",
    "read_stream",
    "redis_for",
    "stream_key",
]

Role = Literal["sink", "notary", "verifier"]
INDEXED_FIELDS = ("subject", "request", "action", "rule")
StreamEntry = tuple[bytes, dict[bytes, bytes]]


def stream_key(prefix: str, partition: int) -> str:
    """The Redis Stream holding one decisions partition's chain."""
    return f"{prefix}:p{partition}"


def checkpoint_key(prefix: str, partition: int) -> str:
    """The Redis Stream of signed checkpoints of one partition's chain."""
    return f"{prefix}:cp:p{partition}"


def index_key(prefix: str, field: str) -> str:
    """The index of one field: a sorted set ordered by value, then time (one key per field,
    so a batch's index entries are one ZADD per field, however many values it has)."""
    return f"{prefix}:ix:{field}"


def index_member(value: bytes, at_ms: int, partition: int, offset: int) -> bytes:
    """One index entry: the value, the decision's time and where the entry is."""
    return b"%s\x00%013d\x00%d:%d" % (value, max(at_ms, 0), partition, offset)


def index_range(value: bytes, since_ms: int | None,
                until_ms: int | None) -> tuple[bytes, bytes]:
    """``ZRANGEBYLEX`` bounds of a value's entries from ``since_ms`` to ``until_ms``
    (inclusive; None: unbounded)."""
    low = b"[%s\x00%013d" % (value, max(since_ms or 0, 0))
    if until_ms is None:
        return low, b"(%s\x01" % value
    return low, b"(%s\x00%013d" % (value, max(until_ms + 1, 0))


def redis_for(settings: Settings, role: Role) -> aioredis.Redis:
    """A client on the audit Redis as the role's ACL user (settings ``*_REDIS_USER``)."""
    user: str | None
    password: SecretStr | None
    if role == "sink":
        user, password = settings.redis_user, settings.redis_password
    elif role == "notary":
        user, password = settings.notary_redis_user, settings.notary_redis_password
    else:
        user, password = settings.verifier_redis_user, settings.verifier_redis_password
    credentials: dict[str, str] = {}
    if user is not None:
        credentials["username"] = user
    if password is not None:
        credentials["password"] = password.get_secret_value()
    return aioredis.Redis.from_url(settings.redis_url, **credentials)  # type: ignore[arg-type]


async def read_stream(client: aioredis.Redis, key: str, after: str | None = None,
                      page: int = 10_000) -> AsyncIterator[list[StreamEntry]]:
    """A Redis Stream's entries (after stream id ``after``) in pages, oldest first, so a
    long chain is never held in memory at once."""
    start = "-" if after is None else f"({after}"
    while True:
        reply = cast(list[StreamEntry], await client.xrange(key, min=start, count=page))
        if not reply:
            return
        yield reply
        start = "(" + reply[-1][0].decode()
