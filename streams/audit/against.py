"""What ``jitwatch audit verify`` compares a chain with beyond itself: the decisions topic
(record for record), the checkpoints' anchor topic, Redis' own count of what a stream ever
held, and the age of its newest signature.

Each check returns the first :class:`~streams.audit.chain.Problem` (or None) and, where
there is one, a note for the report. The verdicts: ``tampered`` (exit 1), ``incomplete``
(the sink is behind, or entries left the topic unsigned: exit 2) and ``unsigned`` (no
recent enough checkpoint: exit 2 unless the auditor allows it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from streams.audit.chain import Checkpoint, Problem
from streams.audit.keyring import parse_time
from streams.audit.topics import content_digest, topic_end, topic_records

__all__ = ["UnsignedLimits", "against_anchor", "against_topic", "removed_entries",
           "unsigned_problem"]


@dataclass(frozen=True, slots=True)
class UnsignedLimits:
    """How much of a chain may be unsigned: entries (None: any number) and the age of the
    newest checkpoint while entries are unsigned (None: any age), as of ``now``."""

    now: datetime
    max_age_s: float | None
    max_entries: int | None


def unsigned_problem(partition: int, entries: int, signed: Sequence[Checkpoint],
                     limits: UnsignedLimits) -> Problem | None:
    """A non-empty chain without a checkpoint, or with more unsigned entries or an older
    newest checkpoint than the limits allow."""
    if entries == 0:
        return None
    if not signed:
        return Problem("unsigned", partition, f"{entries} entries and no checkpoint: nothing "
                       "is signed (is the notary running?)", 0)
    newest = signed[-1]
    unsigned = entries - 1 - newest.head.seq
    if unsigned <= 0:
        return None
    if limits.max_entries is not None and unsigned > limits.max_entries:
        return Problem("unsigned", partition, f"{unsigned} entries after the newest "
                       f"checkpoint (seq {newest.head.seq}) are unsigned, more than "
                       f"--max-unsigned {limits.max_entries}", newest.head.seq + 1)
    try:
        age = (limits.now - parse_time(newest.at)).total_seconds()
    except ValueError:
        age = float("inf")
    if limits.max_age_s is not None and age > limits.max_age_s:
        return Problem("unsigned", partition, f"the newest checkpoint (seq {newest.head.seq}) "
                       f"is {age:.0f} s old and {unsigned} newer entries are unsigned, "
                       f"beyond --max-unsigned-age {limits.max_age_s:g} s (is the notary "
                       "running?)", newest.head.seq + 1)
    return None


async def removed_entries(client: aioredis.Redis, key: str, partition: int,
                          what: str) -> Problem | None:
    """Redis counts every entry a stream was ever given (``entries-added``): more than it
    holds means entries were trimmed (``XADD … MAXLEN/MINID``, ``XTRIM``) or deleted."""
    try:
        info: dict[Any, Any] = await client.xinfo_stream(key)
    except ResponseError:  # no such key: nothing was ever added
        return None
    added, length = info.get("entries-added"), info.get("length")
    if isinstance(added, int) and isinstance(length, int) and added > length:
        return Problem("tampered", partition, f"{added - length} of the {added} {what} ever "
                       f"appended were removed from {key} (trimmed or deleted)")
    return None


async def against_topic(kafka: dict[str, Any], topic: str, partition: int,
                        chain: list[tuple[int, bytes]], signed: Sequence[Checkpoint]
                        ) -> tuple[Problem | None, int, str | None]:
    """Compare the chain's (offset, content digest), in seq order, with the topic
    partition record by record. Returns the problem, the records compared and a note on
    the entries older than the topic's retention (covered by a checkpoint: not a problem)."""
    compared = position = behind = 0
    first: int | None = None
    missing_from: int | None = None
    async for offset, key, value in topic_records(kafka, topic, partition):
        if first is None:
            first = offset
            while position < len(chain) and chain[position][0] < offset:
                position += 1  # older than the topic's retention: cannot be compared
        if position == len(chain):  # the sink has not appended these yet
            missing_from = offset if missing_from is None else missing_from
            behind += 1
            continue
        chain_offset, digest = chain[position]
        if chain_offset < offset:
            return Problem("tampered", partition, "the chain holds an entry for an offset the "
                           "topic has no record at (inserted)", position,
                           chain_offset), compared, None
        if chain_offset > offset:
            return Problem("tampered", partition, f"the topic's record at offset {offset} is "
                           "missing from the chain (deleted)", position, offset), compared, None
        if digest != content_digest(key or b"", value):
            return Problem("tampered", partition, "the entry differs from the topic's record "
                           "at its offset", position, offset), compared, None
        position += 1
        compared += 1
    if missing_from is not None:
        return Problem("incomplete", partition, f"the chain ends before the topic: {behind} "
                       f"records from offset {missing_from} on are not in it yet (sink "
                       "behind)", None, missing_from), compared, None
    if first is None and chain:
        # The topic holds no record (a quiet partition all past retention, or never
        # written): the chain's entries below its end are before retention, not inserted.
        first = await topic_end(kafka, topic, partition)
        position = sum(1 for offset, _ in chain if offset < first)
    if position < len(chain):
        return Problem("tampered", partition, "the chain holds entries beyond the topic's end "
                       "(inserted)", position, chain[position][0]), compared, None
    return (None, compared, None) if first is None else _retention(partition, chain, first,
                                                                     signed, compared)


def _retention(partition: int, chain: list[tuple[int, bytes]], first: int,
               signed: Sequence[Checkpoint], compared: int
               ) -> tuple[Problem | None, int, str | None]:
    """Entries older than the topic's first record: fine when a checkpoint signed them
    (it was made after the notary compared them with the topic), incomplete otherwise."""
    skipped = sum(1 for offset, _ in chain if offset < first)
    if not skipped:
        return None, compared, None
    last = skipped - 1  # the seq of the newest entry the topic no longer holds
    covering = next((number for number, checkpoint in enumerate(signed)
                     if checkpoint.head.seq >= last), None)
    if covering is None:
        return Problem("incomplete", partition, f"{skipped} oldest entries are before the "
                       "topic's retention and not covered by a checkpoint: they cannot be "
                       "compared", last), compared, None
    return None, compared, (f"{skipped} entries before retention, covered by checkpoint "
                            f"#{covering} (seq {signed[covering].head.seq})")


def against_anchor(topic: str, partition: int, anchored: list[tuple[bytes, bytes]],
                   stored: list[tuple[bytes, bytes]]) -> Problem | None:
    """Redis' checkpoints of a chain must be the anchor topic's, one for one. A checkpoint
    the anchor holds and Redis does not, or a different one, is tampering; Redis' newest
    ones missing from the anchor only (the notary stopped before publishing them; it does
    on its next start) leave the evidence incomplete. Read the anchor before Redis: the
    notary appends to Redis first, so what the anchor held then Redis holds too."""
    for number, (redis_one, kafka_one) in enumerate(zip(stored, anchored, strict=False)):
        if redis_one != kafka_one:
            return Problem("tampered", partition, f"checkpoint #{number} in Redis differs from "
                           f"the one anchored in {topic} (replaced)", _seq_of(kafka_one[0]))
    if len(anchored) > len(stored):
        return Problem("tampered", partition, f"{topic} anchors {len(anchored)} checkpoints, "
                       f"Redis holds {len(stored)}: checkpoint #{len(stored)} was dropped from "
                       "Redis", _seq_of(anchored[len(stored)][0]))
    if len(stored) > len(anchored):
        return Problem("incomplete", partition, f"checkpoints #{len(anchored)} on are in Redis "
                       f"but not yet in {topic} (the notary publishes them when it starts)",
                       _seq_of(stored[len(anchored)][0]))
    return None


def _seq_of(payload: bytes) -> int | None:
    try:
        return Checkpoint.from_payload(payload).head.seq
    except ValueError:
        return None
