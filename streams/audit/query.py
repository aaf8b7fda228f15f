"""``jitwatch audit query`` and ``export``: find decisions in the chains, or copy them out
with the proof data to verify them offline.

A query with a subject, request, action or rule reads the sink's index (per field a sorted
set ordered by value, then time bucket; see :func:`streams.audit.keys.index_member`),
starting from the criterion with the fewest members in the time range, so it touches only
candidate entries however long the chains are. A query by time range alone scans the chains.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

import orjson
import redis.asyncio as aioredis

from schemas.policy_load import is_policy_load
from streams.audit.chain import AuditTamperError, ChainEntry, entry_id
from streams.audit.keys import (
    StreamEntry,
    checkpoint_fields,
    checkpoint_key,
    index_key,
    index_places,
    index_range,
    read_stream,
    stream_key,
)
from streams.printable import printable

__all__ = ["EXPORT_FORMAT", "TABLE_HEADER", "ExportWriter", "Filters", "Found", "export",
           "format_row", "query"]

EXPORT_FORMAT = "jitwatch.audit.export/v2"


@dataclass(frozen=True, slots=True)
class Filters:
    """What to look for; every given criterion must hold."""

    subject: str | None = None
    request: str | None = None
    action: str | None = None
    rule: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None

    def indexed(self) -> list[tuple[str, str]]:
        """(index field, value) of the criteria the sink indexes."""
        return [(name, value) for name, value in (
            ("subject", self.subject), ("request", self.request), ("action", self.action),
            ("rule", self.rule)) if value is not None]

    def matches(self, decision: dict[str, Any]) -> bool:
        """Whether a decoded decision meets every criterion."""
        found = {"subject": (decision.get("subject") or {}).get("id"),
                 "request": decision.get("request_id"), "action": decision.get("action"),
                 "rule": (decision.get("rule") or {}).get("id")}
        if any(found[name] != value for name, value in self.indexed()):
            return False
        if self.since is None and self.until is None:
            return True
        try:
            at = datetime.fromisoformat(str(decision.get("at")))
        except ValueError:
            return False
        return (self.since is None or at >= self.since) and \
            (self.until is None or at <= self.until)


@dataclass(frozen=True, slots=True)
class Found:
    """One matching chain entry and its decoded decision."""

    entry: ChainEntry
    decision: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The JSONL form: where it is in the chain, its hash, and the decision."""
        return {"partition": self.entry.partition, "seq": self.entry.seq,
                "offset": self.entry.offset, "hash": self.entry.hash,
                "decision": self.decision}


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _time_of(decision: dict[str, Any]) -> datetime:
    """The decision's ``at`` for ordering: parsed, as RFC 3339 text sorts wrongly when only
    some times carry fractions (``10:00:00Z`` after ``10:00:00.250Z``); unreadable first."""
    try:
        at = datetime.fromisoformat(str(decision.get("at")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _found(partition: int, stream_id: bytes, fields: dict[bytes, bytes],
           filters: Filters) -> Found | None:
    entry = ChainEntry.from_fields(partition, stream_id, fields)
    try:
        decision = orjson.loads(entry.decision)
    except orjson.JSONDecodeError:
        return None
    return Found(entry, decision) if filters.matches(decision) else None


def _index_intact(ranges: list[tuple[str, bytes, bytes]], counts: list[int]) -> None:
    """The sink writes every index member at score 0, and ``ZRANGEBYLEX`` finds members
    only among those of one score: a member given another score (the sink's user keeps
    ZADD) falls out of every range, and its decisions out of every answer."""
    for number, (key, _, _) in enumerate(ranges):
        moved = counts[3 * number + 1] + counts[3 * number + 2]
        if moved:
            raise AuditTamperError(
                f"the index {key} was altered: {moved} members are not at score 0, where "
                "the sink puts every one, so a query would miss their decisions (run "
                "`jitwatch audit verify`; a query by --since/--until alone reads the chains)")


async def query(client: aioredis.Redis, prefix: str, partitions: int,
                filters: Filters) -> list[Found]:
    """Matching entries ordered by decision time, then partition and offset."""
    results: list[Found] = []
    indexed = filters.indexed()
    if indexed:
        since, until = _ms(filters.since), _ms(filters.until)
        ranges = [(index_key(prefix, name), *index_range(value.encode(), since, until))
                  for name, value in indexed]
        async with client.pipeline(transaction=False) as pipe:
            for key, low, high in ranges:
                pipe.zlexcount(key, low, high)
                pipe.zcount(key, "-inf", "(0")
                pipe.zcount(key, "(0", "+inf")
            counts = await pipe.execute()
        _index_intact(ranges, counts)
        sizes = counts[::3]
        key, low, high = ranges[min(range(len(ranges)), key=lambda i: sizes[i])]
        members = cast(list[bytes], await client.zrangebylex(key, low, high))
        places = sorted({(partition, offset) for partition, offsets in map(index_places, members)
                         for offset in offsets})  # a replayed batch may list one twice
        outside = [partition for partition, _ in places if not 0 <= partition < partitions]
        if outside:  # verify checks partitions 0 to N-1 only: a forgery could sit outside
            raise AuditTamperError(
                f"the index {key} points at partition {outside[0]}, which the decisions "
                f"topic does not have (0 to {partitions - 1}): it was altered (run "
                "`jitwatch audit verify`)")
        async with client.pipeline(transaction=False) as pipe:
            for partition, offset in places:
                pipe.xrange(stream_key(prefix, partition), min=entry_id(offset),
                            max=entry_id(offset))
            replies = cast(list[list[StreamEntry]], await pipe.execute())
        for (partition, _), reply in zip(places, replies, strict=True):
            for stream_id, fields in reply:
                found = _found(partition, stream_id, fields, filters)
                if found is not None:
                    results.append(found)
    else:
        for partition in range(partitions):
            async for page in read_stream(client, stream_key(prefix, partition)):
                for stream_id, fields in page:
                    found = _found(partition, stream_id, fields, filters)
                    if found is not None:
                        results.append(found)
    results.sort(key=lambda f: (_time_of(f.decision), f.entry.partition, f.entry.offset))
    return results[:filters.limit] if filters.limit is not None else results


_ROW = "{!s:<26} {!s:<11} {!s:<30} {!s:<14} {!s:<24} {}"
"""The table's columns: time, action, subject, request, rule, place in the chain."""
TABLE_HEADER = _ROW.format("time", "action", "subject", "request", "rule",
                           "chain (partition:seq@offset)")
"""The header of :func:`format_row`'s table."""


def format_row(found: Found) -> str:
    """One table row: time, action, subject, request, rule, place in the chain. A worker's
    policy-load record shows as ``policy-load`` with its outcome and policy version.

    Every field but the place is what the decision's producer wrote, so each is shown
    through :func:`streams.printable.printable` (whole: an auditor needs the full ids)."""
    decision = found.decision
    action, rule = decision.get("action", "?"), (decision.get("rule") or {}).get("id", "?")
    if is_policy_load(decision):
        action = "policy-load"
        rule = f"{decision.get('outcome', '?')} {(decision.get('new') or {}).get('version', '')}"
    claimed = (decision.get("at", "?"), action, (decision.get("subject") or {}).get("id", "?"),
               decision.get("request_id") or "-", rule)
    return _ROW.format(*map(printable, claimed),
                       f"p{found.entry.partition}:{found.entry.seq}@{found.entry.offset}")


def _text_or_b64(name: str, value: bytes) -> dict[str, str]:
    try:
        return {name: value.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(value).decode()}


@dataclass(slots=True)
class _Written:
    """What an export holds of one partition."""

    entries: int = 0
    checkpoints: int = 0
    head: str | None = None


class ExportWriter:
    """The lines of an export, in order: :meth:`header`, each partition's :meth:`checkpoint`
    and :meth:`entries`, then :meth:`end`, which records what was written per partition
    (entries, checkpoints, head hash), so a verifier can tell a cut or pruned file from a
    complete one."""

    def __init__(self, prefix: str, partitions: list[int]) -> None:
        self._prefix = prefix
        self._written = {partition: _Written() for partition in partitions}

    def header(self, exported_at: datetime) -> bytes:
        """The first line: format, prefix and the partitions the export holds."""
        return orjson.dumps({"kind": "export", "format": EXPORT_FORMAT, "prefix": self._prefix,
                             "partitions": list(self._written),
                             "exported_at": exported_at.isoformat(timespec="seconds")})

    def checkpoint(self, partition: int, fields: dict[bytes, bytes]) -> bytes:
        """One signed checkpoint (all of a partition's come before its entries)."""
        self._written[partition].checkpoints += 1
        payload, sig = checkpoint_fields(fields)
        return orjson.dumps({"kind": "checkpoint", "partition": partition,
                             "payload": payload.decode(errors="replace"),
                             "sig": sig.decode(errors="replace")})

    def entries(self, partition: int, page: list[StreamEntry]) -> Iterator[bytes]:
        """One line per chain entry, exact bytes kept."""
        written = self._written[partition]
        for stream_id, fields in page:
            entry = ChainEntry.from_fields(partition, stream_id, fields)
            written.entries += 1
            written.head = entry.hash
            yield orjson.dumps({
                "kind": "entry", "partition": partition, "id": entry.stream_id,
                "seq": entry.seq, "offset": entry.offset, **_text_or_b64("key", entry.key),
                "decision_id": entry.decision_id.decode(),
                **_text_or_b64("decision", entry.decision), "prev": entry.prev,
                "hash": entry.hash})

    def end(self) -> bytes:
        """The last line: what each partition's part of the file holds."""
        return orjson.dumps({"kind": "end", "partitions": {
            str(partition): {"entries": written.entries, "checkpoints": written.checkpoints,
                             "head": written.head}
            for partition, written in self._written.items()}})


async def _export_lines(client: aioredis.Redis, prefix: str,
                        partitions: list[int]) -> AsyncIterator[bytes]:
    writer = ExportWriter(prefix, partitions)
    yield writer.header(datetime.now(UTC))
    for partition in partitions:
        async for page in read_stream(client, checkpoint_key(prefix, partition)):
            for _, fields in page:
                yield writer.checkpoint(partition, fields)
        async for page in read_stream(client, stream_key(prefix, partition)):
            for line in writer.entries(partition, page):
                yield line
    yield writer.end()


async def export(client: aioredis.Redis, prefix: str, partitions: list[int],
                 out: BinaryIO) -> int:
    """Write the chains of ``partitions`` with their checkpoints as JSONL (each partition's
    checkpoints, then its entries, exact bytes kept); returns the number of lines."""
    lines = 0
    async for line in _export_lines(client, prefix, partitions):
        out.write(line + b"\n")
        lines += 1
    return lines
