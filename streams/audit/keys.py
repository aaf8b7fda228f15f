"""Redis key names of the audit trail, and a Redis client per role (sink, notary, verifier).

Under the prefix ``P`` (``JITWATCH_AUDIT_KEY_PREFIX``):

- ``P:p<partition>``: the hash chain of one decisions partition (a Redis Stream),
- ``P:ix:<field>``: for ``subject``, ``request``, ``action`` and ``rule``, one sorted set
  of members ``<value> NUL <time bucket: epoch ms, 13 digits> NUL <partition>:<offset>,...``
  (a value's entries of one partition within one second, from one sink batch), all with
  score 0, so ``ZRANGEBYLEX`` finds a value's entries in time order (:func:`index_member`),
- ``P:cp:p<partition>``: the notary's signed checkpoints of that chain (a Redis Stream).

The stack's ACLs (ops/stack) grant the sink ``P:p*`` and ``P:ix:*``, the notary read on
``P:p*`` and write on ``P:cp:*``, the verifier read only.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, Literal, cast

import redis.asyncio as aioredis
from pydantic import SecretStr
from redis.credentials import CredentialProvider

from streams.settings import AuditSettings

__all__ = [
    "INDEXED_FIELDS",
    "INDEX_BUCKET_MS",
    "WRITER_SOCKET_TIMEOUT_S",
    "PasswordFile",
    "Role",
    "chains_outside",
    "checkpoint_fields",
    "checkpoint_key",
    "index_bucket",
    "index_key",
    "index_member",
    "index_place",
    "index_places",
    "index_range",
    "read_stream",
    "redis_for",
    "stream_key",
]

Role = Literal["sink", "notary", "verifier"]
INDEXED_FIELDS = ("subject", "request", "action", "rule")
INDEX_BUCKET_MS = 1000
"""Time resolution of the index: a query reads at most one bucket's worth of candidates
beyond each end of its time range."""
StreamEntry = tuple[bytes, dict[bytes, bytes]]
WRITER_SOCKET_TIMEOUT_S = 30.0
"""How long the sink and the notary wait for a Redis reply before taking it for an outage
(retried with a warning): without it a Redis that stops answering (``CLIENT PAUSE … WRITE``
by its admin, a hung host) kept them waiting forever, without a word. Their commands
take milliseconds; a 10,000-entry page, well under a second."""


def stream_key(prefix: str, partition: int) -> str:
    """The Redis Stream holding one decisions partition's chain."""
    return f"{prefix}:p{partition}"


def checkpoint_key(prefix: str, partition: int) -> str:
    """The Redis Stream of signed checkpoints of one partition's chain."""
    return f"{prefix}:cp:p{partition}"


async def chains_outside(client: aioredis.Redis, prefix: str, partitions: int) -> list[str]:
    """Keys named like a chain (``P:p<digits>``) other than those of partitions 0 to
    ``partitions - 1``: nothing of jitwatch's writes them, nothing verifies them, and the
    sink's user may create them (its ACL pattern covers them)."""
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + ":p[0-9]*"
    ours = {stream_key(prefix, partition) for partition in range(partitions)}
    found = []
    async for key in client.scan_iter(match=pattern):
        name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        if name not in ours and name[len(prefix) + 2:].isdigit():
            found.append(name)
    return sorted(found)


def checkpoint_fields(fields: dict[bytes, bytes]) -> tuple[bytes, bytes]:
    """A checkpoint stream entry's (payload, sig); empty when missing (an entry appended by
    someone else: the checks that follow name it instead of failing on a missing key)."""
    return fields.get(b"payload", b""), fields.get(b"sig", b"")


def index_key(prefix: str, field: str) -> str:
    """The index of one field: a sorted set ordered by value, then time (one key per field,
    so a batch's index entries are one ZADD per field, however many values it has)."""
    return f"{prefix}:ix:{field}"


def index_bucket(at_ms: int) -> int:
    """The start (epoch ms) of the index's time bucket holding ``at_ms``."""
    at_ms = max(at_ms, 0)
    return at_ms - at_ms % INDEX_BUCKET_MS


def index_member(value: bytes, at_ms: int, partition: int, offsets: Iterable[bytes]) -> bytes:
    """One index member: where (partition, offsets as decimal ASCII) entries with ``value``
    and a decision time in the bucket of ``at_ms`` are. One member per value, bucket and
    partition of a sink batch, so a batch adds few members per action or rule, not one per
    entry; members of the same value and bucket (other batches, replays) add up."""
    return value + index_place(index_bucket(at_ms), partition, b",".join(offsets))


def index_place(bucket: int, partition: int, offsets: bytes) -> bytes:
    """The part of an index member after the value (``bucket`` from :func:`index_bucket`,
    ``offsets`` comma-separated decimal ASCII)."""
    return b"\x00%013d\x00%d:%b" % (bucket, partition, offsets)


def index_places(member: bytes) -> tuple[int, list[int]]:
    """The partition and offsets an index member points at."""
    partition, offsets = member.rsplit(b"\x00", 1)[1].split(b":")
    return int(partition), [int(offset) for offset in offsets.split(b",")]


def index_range(value: bytes, since_ms: int | None,
                until_ms: int | None) -> tuple[bytes, bytes]:
    """``ZRANGEBYLEX`` bounds of the members that may hold a value's entries from
    ``since_ms`` to ``until_ms`` (inclusive; None: unbounded). Whole buckets: the caller
    drops the entries outside the range."""
    low = b"[%s\x00%013d" % (value, index_bucket(since_ms or 0))
    if until_ms is None:
        return low, b"(%s\x01" % value
    return low, b"(%s\x00%013d" % (value, max(until_ms + 1, 0))


class PasswordFile(CredentialProvider):
    """A role's login with the password read from its file at every new connection, so a
    password rotated with an overlap (``ops/stack rotate-secrets``, issue 23) is picked up
    on the next reconnect without a restart. The password is never kept in a repr."""

    def __init__(self, user: str | None, path: Path, first: SecretStr | None) -> None:
        self._user = user
        self._path = path
        self._last = first  # what the settings read: used while the file is being replaced

    def __repr__(self) -> str:
        return f"<PasswordFile {self._user} {self._path}>"

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        """(user, password) or (password,), the password as the file holds it now."""
        try:
            password = self._path.read_text(encoding="utf-8").strip()
            if password:
                self._last = SecretStr(password)
        except OSError:
            pass  # a rename in progress or a moment without the file: the last one read
        secret = "" if self._last is None else self._last.get_secret_value()
        return (self._user, secret) if self._user is not None else (secret,)

    async def get_credentials_async(self) -> tuple[str] | tuple[str, str]:
        """The same, for redis.asyncio's connections (a small local file: no thread)."""
        return self.get_credentials()


def redis_for(audit: AuditSettings, role: Role) -> aioredis.Redis:
    """A client on the audit Redis as the role's ACL user (settings ``*_REDIS_USER``); with
    a ``*_PASSWORD_FILE`` the file is read again at every connect (:class:`PasswordFile`)."""
    user: str | None
    password: SecretStr | None
    if role == "sink":
        user, password, path = audit.redis_user, audit.redis_password, audit.redis_password_file
    elif role == "notary":
        user, password, path = (audit.notary_redis_user, audit.notary_redis_password,
                                audit.notary_redis_password_file)
    else:
        user, password, path = (audit.verifier_redis_user, audit.verifier_redis_password,
                                audit.verifier_redis_password_file)
    options: dict[str, Any] = {}
    if path is not None:  # read again at every connect: a rotated password needs no restart
        options["credential_provider"] = PasswordFile(user, path, password)
    else:
        if user is not None:
            options["username"] = user
        if password is not None:
            options["password"] = password.get_secret_value()
    if role != "verifier":
        options["socket_timeout"] = WRITER_SOCKET_TIMEOUT_S
    return aioredis.Redis.from_url(audit.redis_url, **options)


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
