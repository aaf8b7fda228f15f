"""Redis key names of the audit trail, and a Redis client per role (sink, notary, verifier).

Under the prefix ``P`` (``JITWATCH_AUDIT_KEY_PREFIX``):

- ``P:p<partition>``: the hash chain of one decisions partition (a Redis Stream),
- ``P:ix:<field>:<value>``: sorted sets of entry refs ``<partition>:<offset>`` scored by
  the decision's ``at`` (ms) for ``subject``, ``request``, ``action`` and ``rule``,
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
    "index_prefix",
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


def index_prefix(prefix: str) -> str:
    """Common start of every index key (the sink's append script adds ``<field>:<value>``)."""
    return f"{prefix}:ix:"


def index_key(prefix: str, field: str, value: str) -> str:
    """Sorted set of entry refs ``<partition>:<offset>`` whose decision has ``field`` ==
    ``value``, scored by the decision's ``at`` in epoch milliseconds."""
    return f"{index_prefix(prefix)}{field}:{value}"


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
