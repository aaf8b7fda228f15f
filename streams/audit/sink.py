"""The audit sink: every committed decision, in order, appended to a hash chain in Redis.

One chain (Redis Stream) per decisions partition, entry id ``0-<offset + 1>``, so stream
order is topic order and a replayed offset is recognised instead of appended twice (and a
replayed offset whose stored entry differs stops the sink as tampering). Each flush hashes
the new entries in Python (:mod:`streams.audit.chain`) and appends them, with their query
index, as a compare-and-append: ``WATCH`` the chain, read its head, and only when the head
is still the one the hashes link to, ``MULTI``, the ``XADD``s and ``ZADD``s, ``EXEC``
(which Redis refuses when the chain changed after the ``WATCH``). A partition's batch goes
out as transactions of a few hundred entries on one connection, each one's head read
pipelined behind the one before, while the partitions run side by side: Redis appends one
transaction while the sink hashes the next.

Redis is the source of truth for the position: on assignment the sink reads each chain's
head and seeks Kafka to the offset after it, and Kafka offsets are committed only after
Redis holds the entries. When Redis loses acknowledged writes (a crash inside the AOF's
one-second fsync window) the sink sees its chain head move back and seeks Kafka back to
refill the chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from redis.exceptions import AuthenticationError, InvalidResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.errors import ConfigError
from streams.audit.chain import (
    ENTRY_FIELDS,
    GENESIS,
    AuditTamperError,
    Head,
    entry_digest,
    entry_hash_prefix,
    entry_id,
)
from streams.audit.keys import (
    INDEXED_FIELDS,
    index_bucket,
    index_key,
    index_member,
    index_place,
    redis_for,
    stream_key,
)
from streams.kafka.security import kafka_client_options
from streams.settings import Settings

__all__ = ["POLL_RECORDS", "AuditRecord", "RedisAuditSink", "run_audit_sink"]

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_RECORDS = 20_000
"""Records the sink takes from Kafka per poll at most, so a flush's size when it is behind."""
_TRANSACTION_ENTRIES = 250
"""Entries per transaction: small enough that Redis starts appending soon after a flush
begins, the sink waits little for the last one and other clients little behind one EXEC;
large enough that a transaction's fixed cost (head read, one ZADD per index) stays small."""
_POSTINGS_MAX = 500
"""Offsets per index member at most (a big batch of one action splits into several)."""
_QUEUED = b"+QUEUED\r\n"


def _bulk(part: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(part), part)


def _command(*parts: bytes) -> bytes:
    """One command as RESP."""
    return b"*%d\r\n%b" % (len(parts), b"".join(map(_bulk, parts)))


def _xadd_template() -> bytes:
    """``XADD <chain> <id>`` and the :data:`ENTRY_FIELDS` with their values as RESP, for
    ``%``: one formatting per entry is the cheapest way to pack it (redis-py's packing cost
    more than Redis' append)."""
    fields = b"".join(_bulk(name) + (b"$64\r\n%b\r\n" if name in (b"prev", b"hash")
                                     else b"$%d\r\n%b\r\n") for name in ENTRY_FIELDS)
    return b"*%d\r\n$4\r\nXADD\r\n%%b$%%d\r\n%%b\r\n" % (3 + 2 * len(ENTRY_FIELDS)) + fields


_XADD = _xadd_template()


@dataclass(slots=True)
class _Appended:
    """What one partition's transactions of one flush did."""

    partition: int
    heads: list[tuple[Head, int]] = field(default_factory=list)
    """Per transaction applied: the head after it and how many entries it appended."""
    found: Head | None = None
    """The head Redis had when it was not the one the next transaction links to."""
    conflict: bool = False
    """A transaction was not applied: the head differed (:attr:`found`), or the chain
    changed after the ``WATCH`` (:attr:`refused`)."""
    refused: bool = False
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class _Transaction:
    """One transaction's commands between ``MULTI`` and ``EXEC`` as RESP, and the start of
    the ``EXEC`` reply they give when all goes well (array length, then each entry id)."""

    commands: list[bytes]
    expected: bytes
    entries: int
    head: Head


class AuditRecord(NamedTuple):
    """One consumed decision record (a tuple: immutable, and built for every record at a
    third of a frozen dataclass's cost)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


def _index_parts(decision: bytes) -> tuple[bytes, int, tuple[bytes, bytes, bytes, bytes]]:
    """The decision id, its time bucket (epoch ms, :func:`index_bucket`) and the subject,
    request, action and rule index values (empty when absent); all empty when the decision
    is unreadable: it is still chained (evidence), just not indexed."""
    try:
        data = orjson.loads(decision)
        get = data.get
        at = get("at")
        subject, rule = get("subject"), get("rule")
        return (str(get("decision_id") or "").encode(),
                index_bucket(int(datetime.fromisoformat(at).timestamp() * 1000)) if at else 0,
                (str(subject.get("id") or "").encode() if subject else b"",
                 str(get("request_id") or "").encode(),
                 str(get("action") or "").encode(),
                 str(rule.get("id") or "").encode() if rule else b""))
    except (orjson.JSONDecodeError, AttributeError, ValueError, TypeError):
        return b"", 0, (b"", b"", b"", b"")


def _fresh(records: list[AuditRecord], head: Head | None) -> list[AuditRecord]:
    """The records after ``head`` (the others are replays, checked by
    :meth:`RedisAuditSink._check_replays`, or duplicates within the batch)."""
    last, fresh = -1 if head is None else head.offset, []
    for record in records:
        if record.offset > last:
            fresh.append(record)
            last = record.offset
    return fresh


class _Replies:
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
        return _head_of([(entry, dict(zip(fields[::2], fields[1::2], strict=True)))
                         for entry, fields in found])

    async def transaction(self, transaction: _Transaction) -> bool:
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


class RedisAuditSink:
    """Buffers decisions with :meth:`add` and appends them to the chains with :meth:`flush`.

    Keeps each chain's head between flushes. When a flush finds a chain's head behind the
    one it knows (Redis lost writes), it drops that partition's buffer and records where
    consumption must resume in :attr:`resume_from`.
    """

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._index_keys = [index_key(prefix, field).encode() for field in INDEXED_FIELDS]
        self._buffer: dict[int, list[AuditRecord]] = defaultdict(list)
        self._heads: dict[int, Head | None] = {}
        self.resume_from: dict[int, int] = {}
        """Partition -> offset to consume from again (entries Redis lost); the caller seeks
        there and clears it."""
        self.last_flushed: dict[int, int] = {}
        """Partition -> highest offset the last flush found in Redis (appended or replayed)."""

    def add(self, record: AuditRecord) -> None:
        """Buffer one record; nothing is written until :meth:`flush`."""
        self._buffer[record.partition].append(record)

    def __len__(self) -> int:
        return sum(len(records) for records in self._buffer.values())

    def drop(self, partition: int) -> None:
        """Forget a partition's buffered records and known head (revoked or re-synced)."""
        self._buffer.pop(partition, None)
        self._heads.pop(partition, None)

    async def read_heads(self, partitions: list[int]) -> dict[int, Head | None]:
        """Read the chains' heads from Redis and remember them."""
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.xrevrange(stream_key(self._prefix, partition), count=1)
            replies = await pipe.execute()
        heads = {partition: _head_of(reply) for partition, reply in zip(partitions, replies,
                                                                         strict=True)}
        self._heads.update(heads)
        return heads

    async def check_heads(self) -> bool:
        """Compare the known heads with Redis (after an outage): a chain that moved back
        lost writes, so its partition is queued in :attr:`resume_from`. Returns True."""
        known = dict(self._heads)
        if known:
            for partition, head in (await self.read_heads(list(known))).items():
                self._compare(partition, known[partition], head)
        return True

    def _compare(self, partition: int, known: Head | None, actual: Head | None) -> None:
        known_seq = -1 if known is None else known.seq
        actual_seq = -1 if actual is None else actual.seq
        if actual_seq < known_seq:
            resume = 0 if actual is None else actual.offset + 1
            log.warning("audit chain of partition %d lost entries after seq %d (Redis lost "
                        "acknowledged writes); refilling from offset %d", partition,
                        actual_seq, resume)
            self._buffer.pop(partition, None)
            self.resume_from[partition] = resume
        elif actual_seq == known_seq and known is not None and actual is not None \
                and actual.hash != known.hash:
            raise AuditTamperError(f"audit chain of partition {partition}: the entry at seq "
                                   f"{actual_seq} changed under the sink (hash {known.hash} "
                                   f"became {actual.hash}); stopping")

    async def flush(self) -> int:
        """Append the buffered records; returns how many were new. Raises on Redis errors
        (the buffer is kept for a retry) and :class:`AuditTamperError` when Redis holds a
        different entry where a replayed record belongs."""
        appended = 0
        while self._buffer:
            unknown = [p for p in self._buffer if p not in self._heads]
            if unknown:
                await self.read_heads(unknown)
            await self._check_replays()
            done = await asyncio.gather(*(self._append(partition, records)
                                          for partition, records in self._buffer.items()))
            failure: BaseException | None = None
            for outcome in done:
                appended += await self._settle(outcome)
                failure = failure or outcome.error
            if failure is not None:
                # Whether a transaction whose reply was lost was applied shows on the retry:
                # the head differs and the records become replays.
                raise failure
        return appended

    async def _append(self, partition: int, records: list[AuditRecord]) -> _Appended:
        """Hash a partition's records and append them as transactions of at most
        :data:`_TRANSACTION_ENTRIES` entries, one after another on one connection, each
        sent with the ``WATCH`` and head read of the next behind its ``EXEC``. The next
        transaction is hashed while Redis runs the one before."""
        outcome = _Appended(partition)
        head = self._heads[partition]
        fresh = _fresh(records, head)
        if not fresh:
            return outcome
        key = stream_key(self._prefix, partition).encode()
        watch = _command(b"WATCH", key) + _command(b"XREVRANGE", key, b"+", b"-", b"COUNT",
                                                   b"1")
        pool = self._client.connection_pool
        connection = None
        clean = False
        try:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py
            await connection.send_packed_command(watch, check_health=False)
            replies = _Replies(connection)
            transaction: _Transaction | None = None
            for first in range(_TRANSACTION_ENTRIES, len(fresh) + _TRANSACTION_ENTRIES,
                               _TRANSACTION_ENTRIES):
                found = await replies.head()
                if found != head:
                    outcome.found, outcome.conflict = found, True
                    break
                if transaction is None:
                    # Hashed only now: while the partitions wait for their heads, each has
                    # sent its WATCH, so Redis gets the first transaction soon.
                    transaction = self._chain(partition, head, fresh[:_TRANSACTION_ENTRIES])
                more = first < len(fresh)
                await connection.send_packed_command(
                    [b"*1\r\n$5\r\nMULTI\r\n", *transaction.commands, b"*1\r\n$4\r\nEXEC\r\n",
                     *((watch,) if more else ())], check_health=False)
                following = self._chain(partition, transaction.head,
                                        fresh[first:first + _TRANSACTION_ENTRIES]) \
                    if more else None
                if not await replies.transaction(transaction):
                    outcome.conflict = outcome.refused = True  # changed after the WATCH
                    break
                outcome.heads.append((transaction.head, transaction.entries))
                head = transaction.head
                if following is None:
                    clean = replies.drained
                    break
                transaction = following
        except BaseException as exc:  # noqa: BLE001  # kept, raised by flush after the others
            outcome.error = exc
        finally:
            if connection is not None:
                if not clean:  # a WATCH, or replies, may be left on the connection
                    await connection.disconnect()
                await pool.release(connection)
        return outcome

    async def _settle(self, outcome: _Appended) -> int:
        """Take what a partition's transactions did: move its head over what was appended,
        and drop its buffer once all is in Redis. Returns the entries appended."""
        partition, appended = outcome.partition, 0
        for new_head, count in outcome.heads:
            self._heads[partition] = new_head
            self.last_flushed[partition] = new_head.offset
            appended += count
        if outcome.conflict:  # another writer, or Redis lost writes: look again
            known = self._heads.pop(partition, None)
            found = await self._read_head(partition) if outcome.refused else outcome.found
            self._compare(partition, known, found)
        elif outcome.error is None:
            self._buffer.pop(partition, None)  # all in Redis (or only replays)
        return appended

    async def _read_head(self, partition: int) -> Head | None:
        return (await self.read_heads([partition]))[partition]

    def _chain(self, partition: int, head: Head | None,
               records: list[AuditRecord]) -> _Transaction:
        """Hash the records (all after ``head``, in offset order) into one transaction's
        commands: an ``XADD`` per entry, then per index one ``ZADD`` of its members, one
        per value and time bucket."""
        seq, prev = (-1, GENESIS.encode()) if head is None else (head.seq, head.hash.encode())
        key = _bulk(stream_key(self._prefix, partition).encode())
        hashed_partition = entry_hash_prefix(partition)
        commands: list[bytes] = []
        ids: list[bytes] = []
        # Subjects and requests take one member per entry (few of a batch share a value and
        # second); actions and rules, which have a handful of values, one per value and
        # second: (value, time bucket) -> offsets.
        subjects: list[bytes] = []
        requests: list[bytes] = []
        actions: dict[tuple[bytes, int], list[bytes]] = defaultdict(list)
        rules: dict[tuple[bytes, int], list[bytes]] = defaultdict(list)
        for record in records:
            seq += 1
            key_bytes, value = record.key or b"", record.value
            decision_id, bucket, (subject, request, action, rule) = _index_parts(value)
            offset = b"%d" % record.offset
            entry = b"0-%d" % (record.offset + 1)
            number = b"%d" % seq
            digest = entry_digest(hashed_partition, number, offset, key_bytes, decision_id,
                                  value, prev).encode()
            commands.append(_XADD % (key, len(entry), entry, len(number), number,
                                     len(offset), offset, len(key_bytes), key_bytes,
                                     len(decision_id), decision_id, len(value), value,
                                     prev, digest))
            ids.append(_bulk(entry))
            place = index_place(bucket, partition, offset)
            if subject:
                subjects.append(subject + place)
            if request:
                requests.append(request + place)
            if action:
                actions[action, bucket].append(offset)
            if rule:
                rules[rule, bucket].append(offset)
            prev = digest
        for index, members in zip(self._index_keys, (subjects, requests, *(
                [index_member(found, bucket, partition, offsets[first:first + _POSTINGS_MAX])
                 for (found, bucket), offsets in grouped.items()
                 for first in range(0, len(offsets), _POSTINGS_MAX)]
                for grouped in (actions, rules))), strict=True):
            if members:
                commands.append(b"*%d\r\n$4\r\nZADD\r\n%b%b" % (
                    2 + 2 * len(members), _bulk(index),
                    b"".join([b"$1\r\n0\r\n$%d\r\n%b\r\n" % (len(m), m) for m in members])))
        return _Transaction(commands, b"*%d\r\n%b" % (len(commands), b"".join(ids)),
                            len(records), Head(seq, records[-1].offset, prev.decode()))

    async def _check_replays(self) -> None:
        """Records at or below a chain's head must equal what the chain holds there."""
        ranges: list[tuple[int, list[AuditRecord]]] = []
        for partition, records in self._buffer.items():
            head = self._heads[partition]
            replayed = [r for r in records if head is not None and r.offset <= head.offset]
            if replayed:
                ranges.append((partition, replayed))
        if not ranges:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for partition, replayed in ranges:
                pipe.xrange(stream_key(self._prefix, partition),
                            min=entry_id(min(r.offset for r in replayed)),
                            max=entry_id(max(r.offset for r in replayed)))
            replies = await pipe.execute()
        for (partition, replayed), entries in zip(ranges, replies, strict=True):
            stored = {_text(entry_id_): fields for entry_id_, fields in entries}
            for record in replayed:
                fields = stored.get(entry_id(record.offset))
                if fields is None or fields.get(b"decision") != record.value \
                        or fields.get(b"key") != (record.key or b""):
                    found = "nothing" if fields is None else \
                        f"a different entry (seq {fields.get(b'seq', b'?').decode()})"
                    raise AuditTamperError(
                        f"audit chain of partition {partition}: the topic's record at offset "
                        f"{record.offset} is replayed but the chain holds {found} there; "
                        "the chain was altered (run `jitwatch audit verify`); stopping")
            self.last_flushed[partition] = max(r.offset for r in replayed)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _head_of(reply: list[tuple[bytes, dict[bytes, bytes]]]) -> Head | None:
    if not reply:
        return None
    fields = reply[0][1]
    return Head(int(fields[b"seq"]), int(fields[b"offset"]), fields[b"hash"].decode())


_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


async def until_redis_answers(action: Callable[[], Awaitable[T]], stop: asyncio.Event,
                              what: str) -> T | None:
    """Run ``action`` until Redis answers, backing off from 0.1 s to 5 s; None once ``stop``
    is set. Wrong credentials are not an outage: they raise :class:`ConfigError`."""
    delay = 0.1
    while True:
        try:
            return await action()
        except AuthenticationError as exc:
            raise ConfigError(f"Redis refused the credentials for {what}: {exc}; check "
                              "JITWATCH_*REDIS_USER and *_PASSWORD_FILE") from exc
        except _REDIS_DOWN as exc:
            if stop.is_set():
                return None
            log.warning("Redis unavailable while %s (%s); retrying in %.1f s", what,
                        exc.__class__.__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 5.0)


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Partitions newly assigned to the sink, whose position must come from Redis."""

    def __init__(self) -> None:
        self.unsynced: set[TopicPartition] = set()
        self.revoked: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.revoked |= set(revoked)
        self.unsynced -= set(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.unsynced |= set(assigned)


async def run_audit_sink(settings: Settings, stop: asyncio.Event) -> None:
    """Consume committed decisions and append them to the chains until ``stop`` is set.

    Offsets are committed only after Redis holds the entries; while Redis is unreachable the
    sink keeps its batch and retries with backoff, never skipping. Raises
    :class:`AuditTamperError` (the process stops loudly) when the chain was altered.
    """
    client = redis_for(settings, "sink")
    sink = RedisAuditSink(client, settings.audit_key_prefix)
    assignments = _Assignments()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.audit_group,
        client_id=f"{settings.audit_group}-sink",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **kafka_client_options(settings),
    )
    consumer.subscribe([settings.topic_decisions], listener=assignments)
    await consumer.start()
    log.info("audit sink consuming %s as group %s", settings.topic_decisions,
             settings.audit_group)
    next_check = time.monotonic() + 5.0
    try:
        while not stop.is_set():
            for tp in assignments.revoked:
                sink.drop(tp.partition)
            assignments.revoked.clear()
            if assignments.unsynced and not await _sync(consumer, sink, assignments, stop):
                return
            batches = await consumer.getmany(timeout_ms=200, max_records=POLL_RECORDS)
            for tp, messages in batches.items():
                if tp in assignments.unsynced:
                    continue  # fetched before the seek to the chain's head
                for message in messages:
                    if message.value is not None:
                        sink.add(AuditRecord(tp.partition, message.offset, message.key,
                                             message.value))
            if len(sink):
                failed = False

                async def flush() -> int:
                    nonlocal failed
                    try:
                        return await sink.flush()
                    except _REDIS_DOWN:
                        failed = True
                        raise

                if await until_redis_answers(flush, stop, "appending audit entries") is None:
                    return
                if failed and await until_redis_answers(sink.check_heads, stop,
                                                        "checking chain heads") is None:
                    return
                await _commit(consumer, sink)
            elif time.monotonic() >= next_check:
                # Idle: make sure Redis did not lose what it acknowledged (a restart).
                next_check = time.monotonic() + 5.0
                if await until_redis_answers(sink.check_heads, stop,
                                             "checking chain heads") is None:
                    return
            _rewind(consumer, sink, settings.topic_decisions)
    finally:
        await consumer.stop()
        await client.aclose()


async def _sync(consumer: AIOKafkaConsumer, sink: RedisAuditSink, assignments: _Assignments,
                stop: asyncio.Event) -> bool:
    """Seek newly assigned partitions to the offset after their chain's head."""
    tps = sorted(assignments.unsynced)
    for tp in tps:
        sink.drop(tp.partition)
    heads = await until_redis_answers(lambda: sink.read_heads([tp.partition for tp in tps]),
                                      stop, "reading chain heads")
    if heads is None:
        return False
    for tp in tps:
        head = heads[tp.partition]
        if head is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, head.offset + 1)
        log.info("audit chain of partition %d: head seq %s, consuming from offset %s",
                 tp.partition, "-" if head is None else head.seq,
                 "start" if head is None else head.offset + 1)
    assignments.unsynced.clear()
    return True


def _rewind(consumer: AIOKafkaConsumer, sink: RedisAuditSink, topic: str) -> None:
    for partition, offset in sink.resume_from.items():
        consumer.seek(TopicPartition(topic, partition), offset)
    sink.resume_from.clear()


async def _commit(consumer: AIOKafkaConsumer, sink: RedisAuditSink) -> None:
    """Commit what Redis holds (lag monitoring; the position itself comes from Redis)."""
    assigned = {tp.partition: tp for tp in consumer.assignment()}
    offsets = {assigned[p]: offset + 1 for p, offset in sink.last_flushed.items()
               if p in assigned}
    sink.last_flushed.clear()
    if not offsets:
        return
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, KafkaError) as exc:
        log.warning("committing audit offsets failed (%s); Redis holds the entries, the "
                    "next commit covers them", exc)
