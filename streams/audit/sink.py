"""The audit sink: every committed decision, in order, appended to a hash chain in Redis.

One chain (Redis Stream) per decisions partition, entry id ``0-<offset + 1>``, so stream
order is topic order and a replayed offset is recognised instead of appended twice (and a
replayed offset whose stored entry differs stops the sink as tampering). Each flush hashes
the new entries in Python (:mod:`streams.audit.chain`) and appends them, with their query
index, through Lua script calls that first check the chain's head is still the one the
hashes link to: a compare-and-append, atomic in Redis. The calls (a few hundred entries
each; per partition in order on one connection) go out without waiting for replies, so
Redis appends one while the next is hashed.

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
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from redis.exceptions import AuthenticationError, NoScriptError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.errors import ConfigError
from streams.audit.chain import GENESIS, AuditTamperError, Head, entry_hash, entry_id
from streams.audit.keys import (
    INDEXED_FIELDS,
    index_bucket,
    index_key,
    index_member,
    index_place,
    redis_for,
    stream_key,
)
from streams.kafka_security import kafka_client_options
from streams.settings import Settings

__all__ = ["AuditRecord", "RedisAuditSink", "run_audit_sink"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# KEYS[1] the chain, KEYS[2..5] the subject, request, action and rule indexes. ARGV[1]/
# ARGV[2] the head seq/hash the new entries link to ('-1'/'' for an empty chain), ARGV[3] the
# first new entry's prev, ARGV[4] the number of entries, then _ENTRY_ARGS values per entry
# (offset, key, decision_id, decision, hash), then per index a count and that many members.
# The entry id, seq and prev follow from the offset and the entry before, so the script
# derives them instead of receiving them: every argument costs Redis a parse and a copy into
# Lua. Commands run under the caller's ACL user, so the script can do nothing the sink may
# not.
_APPEND = """
local head = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq, hash = '-1', ''
if #head > 0 then
  local f = head[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'seq' then seq = f[i + 1] elseif f[i] == 'hash' then hash = f[i + 1] end
  end
end
if seq ~= ARGV[1] or hash ~= ARGV[2] then return {'conflict', seq, hash} end
local n, prev, count = tonumber(seq), ARGV[3], tonumber(ARGV[4])
local last = 4 + 5 * count
for i = 5, last, 5 do
  n = n + 1
  local offset, digest = ARGV[i], ARGV[i + 4]
  redis.call('XADD', KEYS[1], string.format('0-%d', tonumber(offset) + 1),
    'seq', string.format('%d', n), 'offset', offset, 'key', ARGV[i + 1],
    'decision_id', ARGV[i + 2], 'decision', ARGV[i + 3], 'prev', prev, 'hash', digest)
  prev = digest
end
local i = last + 1
for j = 2, 5 do
  local members, list = tonumber(ARGV[i]), {}
  for k = 1, members do
    list[2 * k - 1] = '0'  -- a string: a Lua number would be printf-formatted per member
    list[2 * k] = ARGV[i + k]
  end
  for first = 1, #list, 4000 do  -- unpack() has a stack limit
    redis.call('ZADD', KEYS[j], unpack(list, first, math.min(first + 3999, #list)))
  end
  i = i + members + 1
end
return {'ok', count}
"""
_ENTRY_ARGS = 5
_ENTRY_RESP = b"$%d\r\n%b\r\n" * 4 + b"$64\r\n%b\r\n"
"""One entry's script arguments as RESP bulk strings (the hash is always 64 hex digits)."""
_CALL_ENTRIES = 250
"""Entries per script call: small enough that Redis starts appending soon after a flush
begins and the sink waits little for the last call; large enough that the calls' fixed
cost (head check, one ZADD per index) stays small."""
_POSTINGS_MAX = 500
"""Offsets per index member at most (a big batch of one action splits into several)."""


def _bulk(part: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(part), part)


@dataclass(slots=True)
class _Calls:
    """The script calls sent for one partition in one flush, on one connection."""

    partition: int
    connection: Any = None
    heads: list[tuple[Head, int]] = field(default_factory=list)
    """Per call sent: the head after it and how many entries it appends."""
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class _Append:
    """One append script call's arguments after the fixed ones, as RESP."""

    resp: list[bytes]
    args: int
    entries: int
    head: Head | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One consumed decision record."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


def _index_parts(decision: bytes) -> tuple[bytes, int, tuple[bytes, bytes, bytes, bytes]]:
    """The decision id, its time (epoch ms) and the subject, request, action and rule index
    values (empty when absent); all empty when the decision is unreadable: it is still
    chained (evidence), just not indexed."""
    try:
        data = orjson.loads(decision)
        at = data.get("at")
        at_ms = int(datetime.fromisoformat(at).timestamp() * 1000) if at else 0
        return (str(data.get("decision_id") or "").encode(), at_ms,
                (str((data.get("subject") or {}).get("id") or "").encode(),
                 str(data.get("request_id") or "").encode(),
                 str(data.get("action") or "").encode(),
                 str((data.get("rule") or {}).get("id") or "").encode()))
    except (orjson.JSONDecodeError, AttributeError, ValueError, TypeError):
        return b"", 0, (b"", b"", b"", b"")


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
        self._append = client.register_script(_APPEND)
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
            sent = [await self._send(partition, records)
                    for partition, records in self._buffer.items()]
            replies = await asyncio.gather(*map(self._receive, sent))
            failure: BaseException | None = None
            forgotten = False
            for calls, answers in zip(sent, replies, strict=True):
                appended += await self._settle(calls, answers)
                if isinstance(calls.error, NoScriptError):
                    forgotten = True  # Redis restarted or flushed its script cache
                elif calls.error is not None:
                    failure = failure or calls.error
            if failure is not None:
                # Whether a failed call was applied shows on the retry: its head check
                # reports a conflict and the records become replays.
                raise failure
            if forgotten:
                await self._client.script_load(_APPEND)
        return appended

    async def _send(self, partition: int, records: list[AuditRecord]) -> _Calls:
        """Hash a partition's records and send them as script calls of at most
        :data:`_CALL_ENTRIES` entries, one after another on one connection (Redis runs them
        in order, each linking to the head the one before leaves). Redis appends a call
        while the next is hashed; the replies are read by :meth:`_receive`."""
        calls = _Calls(partition)
        head = self._heads[partition]
        try:
            calls.connection = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py
            for first in range(0, len(records), _CALL_ENTRIES):
                append = self._chain(partition, head, records[first:first + _CALL_ENTRIES])
                if append.head is None or not append.entries:
                    continue
                await calls.connection.send_packed_command(self._command(partition, head,
                                                                         append))
                calls.heads.append((append.head, append.entries))
                head = append.head
        except BaseException as exc:  # noqa: BLE001  # kept, raised by flush after the others
            calls.error = exc
        return calls

    async def _receive(self, calls: _Calls) -> list[Any]:
        """The replies to a partition's calls, in order, up to the first error."""
        replies: list[Any] = []
        if calls.connection is None:
            return replies
        try:
            for _ in calls.heads:
                replies.append(await calls.connection.read_response())
        except BaseException as exc:  # noqa: BLE001  # kept, raised by flush after the others
            calls.error = calls.error or exc
        if calls.error is not None:
            await calls.connection.disconnect()  # replies may still be on the wire
        await self._client.connection_pool.release(calls.connection)
        return replies

    async def _settle(self, calls: _Calls, replies: list[Any]) -> int:
        """Take the replies of a partition's calls: move its head over what was appended,
        and drop its buffer once all is in Redis. Returns the entries appended."""
        partition, appended = calls.partition, 0
        for (new_head, count), reply in zip(calls.heads, replies, strict=False):
            if reply[0] != b"ok":  # another writer, or Redis lost writes: look again
                known = self._heads.pop(partition, None)
                self._compare(partition, known, await self._read_head(partition))
                return appended
            self._heads[partition] = new_head
            self.last_flushed[partition] = new_head.offset
            appended += count
        if calls.error is None:
            self._buffer.pop(partition, None)  # all in Redis (or only replays)
        return appended

    def _command(self, partition: int, head: Head | None, append: _Append) -> list[bytes]:
        """EVALSHA of the append script with the arguments packed as RESP by :meth:`_chain`:
        redis-py's packing of the arguments cost more than Redis' append."""
        fixed = [b"EVALSHA", self._append.sha.encode(), b"5",
                 stream_key(self._prefix, partition).encode(), *self._index_keys,
                 b"-1" if head is None else b"%d" % head.seq,
                 b"" if head is None else head.hash.encode(),
                 GENESIS.encode() if head is None else head.hash.encode(),
                 b"%d" % append.entries]
        return [b"*%d\r\n" % (len(fixed) + append.args), *map(_bulk, fixed), *append.resp]

    async def _read_head(self, partition: int) -> Head | None:
        return (await self.read_heads([partition]))[partition]

    def _chain(self, partition: int, head: Head | None,
               records: list[AuditRecord]) -> _Append:
        """Hash the records after ``head`` into the script's arguments: per entry
        :data:`_ENTRY_RESP`, then per index its members, one per value and time bucket."""
        seq, prev, last = (-1, GENESIS, -1) if head is None else (head.seq, head.hash,
                                                                    head.offset)
        entries: list[bytes] = []
        # Subjects and requests take one member per entry (few of a batch share a value and
        # second); actions and rules, which have a handful of values, one per value and
        # second: (value, time bucket) -> offsets.
        subjects: list[bytes] = []
        requests: list[bytes] = []
        actions: dict[tuple[bytes, int], list[bytes]] = defaultdict(list)
        rules: dict[tuple[bytes, int], list[bytes]] = defaultdict(list)
        for record in records:
            if record.offset <= last:
                continue  # a replay, checked by _check_replays, or a duplicate in the batch
            seq += 1
            key, value = record.key or b"", record.value
            decision_id, at_ms, (subject, request, action, rule) = _index_parts(value)
            digest = entry_hash(partition, seq, record.offset, key, decision_id, value, prev)
            offset = b"%d" % record.offset
            entries.append(_ENTRY_RESP % (len(offset), offset, len(key), key,
                                          len(decision_id), decision_id, len(value), value,
                                          digest.encode()))
            bucket = index_bucket(at_ms)
            place = index_place(bucket, partition, offset)
            if subject:
                subjects.append(subject + place)
            if request:
                requests.append(request + place)
            if action:
                actions[action, bucket].append(offset)
            if rule:
                rules[rule, bucket].append(offset)
            prev, last = digest, record.offset
        parts, args = [*entries], len(entries) * _ENTRY_ARGS
        for members in (subjects, requests, *(
                [index_member(found, bucket, partition, offsets[first:first + _POSTINGS_MAX])
                 for (found, bucket), offsets in grouped.items()
                 for first in range(0, len(offsets), _POSTINGS_MAX)]
                for grouped in (actions, rules))):
            parts += [_bulk(b"%d" % len(members)), *map(_bulk, members)]
            args += 1 + len(members)
        new_head = head if not entries else Head(seq, last, prev)
        return _Append(parts, args, len(entries), new_head)

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
            batches = await consumer.getmany(timeout_ms=200, max_records=20_000)
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
