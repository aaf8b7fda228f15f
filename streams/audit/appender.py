"""The Redis appender: buffered records appended to the chains through the audit's Redis
Function.

One chain (Redis Stream) per decisions partition, entry id ``0-<offset + 1>``, so stream
order is topic order and a replayed offset is recognised instead of appended twice (and a
replayed offset whose stored entry differs stops the sink as tampering). Each flush hashes
the new entries in Python (:mod:`streams.audit.transactions`) and appends them, with their
query index, by ``FCALL jitwatch_audit_append`` (``ops/audit-functions.lua``): a
compare-and-append that Redis runs at once, appending only when the chain's head is still
the one the hashes link to, and never trimming. A partition's batch goes out as appends of a
few hundred entries on one connection, each sent before the reply of the one before is
read, while the partitions run side by side: Redis appends one while the sink hashes the
next.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from streams.audit.chain import AuditTamperError, Head, entry_id
from streams.audit.keys import stream_key
from streams.audit.replies import Replies, head_of
from streams.audit.transactions import (
    TRANSACTION_ENTRIES,
    AuditRecord,
    Transaction,
    TransactionPlanner,
    records_after,
)
from streams.observe.metrics import AUDIT_APPENDED

__all__ = ["RedisAuditSink"]

# The logger these lines have always been written under (this was the sink module), so log
# searches and filters that name it keep finding them.
log = logging.getLogger("streams.audit.sink")


@dataclass(slots=True)
class _Appended:
    """What one partition's transactions of one flush did."""

    partition: int
    heads: list[tuple[Head, int]] = field(default_factory=list)
    """Per transaction applied: the head after it and how many entries it appended."""
    conflict: bool = False
    """An append was refused: the chain's head was not the one it links to."""
    error: BaseException | None = None


class RedisAuditSink:
    """Buffers decisions with :meth:`add` and appends them to the chains with :meth:`flush`.

    Keeps each chain's head between flushes. When a flush finds a chain's head behind the
    one it knows (Redis lost writes), it drops that partition's buffer and records where
    consumption must resume in :attr:`resume_from`.
    """

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._planner = TransactionPlanner(prefix)
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

    def next_offset(self, partition: int) -> int | None:
        """The decisions offset after the partition's chain head as last seen (0 for an
        empty chain); None when not read yet. For the sink's lag."""
        if partition not in self._heads:
            return None
        head = self._heads[partition]
        return 0 if head is None else head.offset + 1

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
        heads = {partition: head_of(reply) for partition, reply in zip(partitions, replies,
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
            # Lost writes leave an earlier entry of the same chain as its head: offsets and
            # seqs go back together. Anything else was appended by another writer (the
            # sink's user can XADD), and refilling after it would chain onto a forgery.
            if known is not None and actual is not None and \
                    known.offset - actual.offset != known.seq - actual.seq:
                raise AuditTamperError(
                    f"audit chain of partition {partition}: its head went from seq "
                    f"{known.seq} (offset {known.offset}) to seq {actual.seq} (offset "
                    f"{actual.offset}), not an earlier entry of the chain: someone else "
                    "appended it, Redis did not lose writes (run `jitwatch audit verify`); "
                    "stopping")
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
        moved: set[int] = set()
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
                moved.update([outcome.partition] if outcome.heads else [])
                failure = failure or outcome.error
            if failure is not None:
                # Whether a transaction whose reply was lost was applied shows on the retry:
                # the head differs and the records become replays.
                raise failure
        if moved:
            await self._confirm(sorted(moved))
        return appended

    async def _confirm(self, partitions: list[int]) -> None:
        """After a flush without an outage Redis holds the heads its appends acknowledged
        (Redis loses acknowledged writes only in a crash, which the sink sees as one): a
        head behind them means the append function answered without appending, e.g. one
        Redis' admin replaced, and refilling would only feed it again."""
        known = {partition: self._heads.get(partition) for partition in partitions}
        for partition, actual in (await self.read_heads(partitions)).items():
            head = known[partition]
            if head is not None and (actual is None or actual.seq < head.seq):
                raise AuditTamperError(
                    f"audit chain of partition {partition}: Redis acknowledged appends "
                    f"through seq {head.seq} but its head is "
                    f"{'gone' if actual is None else f'seq {actual.seq}'}, with no outage "
                    "between: the append function does not append (replaced? check "
                    "FUNCTION LIST as admin; run `jitwatch audit verify`); stopping")
            self._compare(partition, head, actual)

    async def _append(self, partition: int, records: list[AuditRecord]) -> _Appended:
        """Hash a partition's records and append them as calls of at most
        :data:`TRANSACTION_ENTRIES` entries, one after another on one connection: each is
        sent before the reply of the one before is read, and hashed while Redis runs it.
        A call refused for a stale head refuses the ones behind it too (they link to it)."""
        outcome = _Appended(partition)
        head = self._heads[partition]
        fresh = records_after(records, head)
        if not fresh:
            return outcome
        pool = self._client.connection_pool
        connection = None
        clean = False
        try:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py
            replies = Replies(connection)
            sent: list[Transaction] = []
            for first in range(0, len(fresh), TRANSACTION_ENTRIES):
                transaction = self._planner.plan(partition, head,
                                                 fresh[first:first + TRANSACTION_ENTRIES])
                await connection.send_packed_command(transaction.commands, check_health=False)
                sent.append(transaction)
                head = transaction.head
                if len(sent) > 1:  # the one before ran while this one was hashed
                    await self._take(replies, sent.pop(0), outcome)
            while sent:
                await self._take(replies, sent.pop(0), outcome)
            clean = replies.drained
        except BaseException as exc:  # noqa: BLE001  # kept, raised by flush after the others
            outcome.error = exc
        finally:
            if connection is not None:
                if not clean:  # replies may be left on the connection
                    await connection.disconnect()
                await pool.release(connection)
        return outcome

    @staticmethod
    async def _take(replies: Replies, transaction: Transaction, outcome: _Appended) -> None:
        """One call's reply: applied, refused for a stale head (and so are the calls after
        it), or an error (raised)."""
        applied = await replies.appended(transaction)
        if applied and not outcome.conflict:
            outcome.heads.append((transaction.head, transaction.entries))
        elif not applied:
            outcome.conflict = True

    async def _settle(self, outcome: _Appended) -> int:
        """Take what a partition's transactions did: move its head over what was appended,
        and drop its buffer once all is in Redis. Returns the entries appended."""
        partition, appended = outcome.partition, 0
        for new_head, count in outcome.heads:
            self._heads[partition] = new_head
            self.last_flushed[partition] = new_head.offset
            appended += count
        if appended:
            AUDIT_APPENDED.labels(str(partition)).inc(appended)
        if outcome.conflict:  # another writer, or Redis lost writes: look again
            known = self._heads.pop(partition, None)
            self._compare(partition, known, await self._read_head(partition))
        elif outcome.error is None:
            self._buffer.pop(partition, None)  # all in Redis (or only replays)
        return appended

    async def _read_head(self, partition: int) -> Head | None:
        return (await self.read_heads([partition]))[partition]

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
