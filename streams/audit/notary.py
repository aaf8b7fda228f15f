"""The notary: signs the head of each audit chain every N entries or T seconds.

A separate process with its own Redis user (read the chains, append checkpoints through the
``jitwatch_audit_checkpoint`` function) and the only holder of the Ed25519 private key.
Before signing it re-checks what was appended since its last checkpoint, links and hashes
and, record for record, against the decisions topic, so a signature certifies "equal to
Kafka when signed": a mismatch is never signed, is logged as tampering (partition and
offset) and stops the notary. Every checkpoint is also published to the anchor topic
(:mod:`streams.audit.topics`); on start the notary publishes what the anchor lacks. Keys
come from PEM files made by ``jitwatch audit keygen``; neither the key nor its bytes are
ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import cast

import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
)

from policy import signatures
from streams.audit.chain import (
    GENESIS,
    AuditTamperError,
    ChainVerifier,
    Checkpoint,
    Head,
    checkpoint_digest,
    entry_id,
)
from streams.audit.keyring import Keyring, is_later, load_public_key
from streams.audit.keys import (
    StreamEntry,
    checkpoint_fields,
    checkpoint_key,
    read_stream,
    redis_for,
    stream_key,
)
from streams.audit.notary_keys import generate_keys, load_private_key
from streams.audit.replies import head_of
from streams.audit.retry import until_redis_answers
from streams.audit.topics import AnchorWriter, TopicReader, content_digest, kafka_options
from streams.observe import Health, Progress, WebServer, serving
from streams.observe.metrics import (
    NOTARY,
    NOTARY_CHECKPOINT_AGE,
    NOTARY_CHECKPOINT_INTERVAL,
    NOTARY_CHECKPOINTS,
    NOTARY_READY,
)
from streams.settings import AuditSettings, KafkaSettings, TopicSettings, WebSettings

__all__ = ["CHECKPOINT_FUNCTION", "Notary", "generate_keys", "load_private_key",
           "load_public_key", "run_notary"]

CHECKPOINT_FUNCTION = "jitwatch_audit_checkpoint"
"""The Redis Function the notary appends checkpoints through (``ops/audit-functions.lua``)."""

log = logging.getLogger(__name__)


class Notary:
    """Signs chain heads; one instance per notary process."""

    def __init__(self, client: aioredis.Redis, prefix: str, partitions: int,
                 key: Ed25519PrivateKey, every: int, interval_s: float,
                 topic: TopicReader | None = None, anchor: AnchorWriter | None = None) -> None:
        self._topic = topic
        self._anchor = anchor
        self._client = client
        self._prefix = prefix
        self._partitions = range(partitions)
        self._key = key
        self._key_id = signatures.fingerprint(key.public_key())
        self._every = every
        self._interval_s = interval_s
        self._last: dict[int, tuple[Head | None, str, float]] = {}
        """Partition -> (signed head, digest of that checkpoint, monotonic time signed)."""
        self._unsigned_since: dict[int, float] = {}
        """Partition -> monotonic time of its last checkpoint, while entries wait for the
        next (the notary's last tick found them; signing ends the wait)."""
        self._last_at: dict[int, str] = {}
        """Partition -> the ``at`` of its newest checkpoint (the next is never earlier)."""
        self._own = Keyring.of(key.public_key())
        self._anchored: dict[int, int] = {}
        """Partition -> how many checkpoints the anchor holds, as this notary knows it."""

    async def load(self, partitions: range | list[int] | None = None) -> bool:
        """Read each partition's newest checkpoint from Redis (where signing continues);
        raises :class:`AuditTamperError` for one this notary did not sign (see
        :meth:`_trusted`)."""
        partitions = self._partitions if partitions is None else partitions
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.xrevrange(checkpoint_key(self._prefix, partition), count=2)
            replies = await pipe.execute()
        for partition, reply in zip(partitions, replies, strict=True):
            signed_at = self._last.get(partition, (None, GENESIS, 0.0))[2]
            if reply:
                payload, signature = checkpoint_fields(reply[0][1])
                checkpoint = await self._trusted(partition, payload, signature)
                _follows(partition, checkpoint,
                         checkpoint_fields(reply[1][1])[0] if len(reply) > 1 else None)
                self._last[partition] = (checkpoint.head, checkpoint_digest(payload), signed_at)
                self._last_at[partition] = checkpoint.at
            else:
                self._last[partition] = (None, GENESIS, signed_at)
        return True

    def _signed_by_me(self, payload: bytes, signature: bytes) -> Checkpoint | None:
        try:
            checkpoint = Checkpoint.from_payload(payload)
        except ValueError:
            return None
        good = self._own.check(checkpoint.key_id, checkpoint.at, payload, signature) is None
        return checkpoint if good else None

    async def _trusted(self, partition: int, payload: bytes, signature: bytes) -> Checkpoint:
        """The newest checkpoint in Redis, where signing goes on (its head is not compared
        with Kafka again, and the next checkpoint links to it), only when this notary's key
        signed it or the anchor holds it (signed by the key before a rotation). The
        notary's Redis user can append to the checkpoint stream (an ACL cannot refuse its
        XADD): a checkpoint claiming a head far ahead would otherwise silence the notary,
        and one claiming the head would spare forged entries the comparison."""
        checkpoint = self._signed_by_me(payload, signature)
        if checkpoint is None and self._anchor is not None and \
                (payload, signature) in await self._anchor.anchored(partition):
            checkpoint = Checkpoint.from_payload(payload)
        if checkpoint is None:
            raise AuditTamperError(
                f"the newest checkpoint of partition {partition} in Redis is not signed by "
                f"this notary's key {self._key_id} nor anchored in Kafka: forged or replaced "
                "(run `jitwatch audit verify`); the notary signs nothing after it")
        return checkpoint

    async def tick(self, force: bool = False) -> int:
        """Sign every chain that grew by ``every`` entries, or grew at all and was last
        signed ``interval_s`` ago (any growth when ``force``); returns how many were signed."""
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in self._partitions:
                pipe.xrevrange(stream_key(self._prefix, partition), count=1)
            replies = await pipe.execute()
        now = time.monotonic()
        signed = 0
        for partition, reply in zip(self._partitions, replies, strict=True):
            self._unsigned_since.pop(partition, None)
            head = head_of(reply)  # a head that is no entry, or out of place: tampering
            if head is None:
                continue
            head_seq = head.seq
            last_head, _, last_time = self._last[partition]
            grown = head_seq - (-1 if last_head is None else last_head.seq)
            if grown <= 0:
                continue
            if force or grown >= self._every or now - last_time >= self._interval_s:
                await self._sign(partition, now)
                signed += 1
            else:  # entries wait for their signature: since the last one signed here
                self._unsigned_since[partition] = last_time
        return signed

    @property
    def interval_s(self) -> float:
        """A chain that grew is signed within this many seconds."""
        return self._interval_s

    def observe_ages(self) -> None:
        """Set each partition's checkpoint age (at a scrape): the time since its last
        checkpoint while entries wait for one, growing on while the notary is stuck."""
        now = time.monotonic()
        for partition in self._partitions:
            since = self._unsigned_since.get(partition)
            NOTARY_CHECKPOINT_AGE.labels(str(partition)).set(0 if since is None else
                                                             now - since)

    async def _sign(self, partition: int, now: float) -> None:
        # Link to the newest checkpoint Redis has, not the one remembered; if Redis lost
        # the last one after it was anchored (killed inside the AOF fsync window), put it
        # back first: another checkpoint of that number would differ from the anchor's.
        if self._anchored.get(partition, 0) > await self._client.xlen(
                checkpoint_key(self._prefix, partition)):
            await self._restore(partition)
        await self.load([partition])
        last_head, last_digest, _ = self._last[partition]
        verifier = ChainVerifier(partition, None)
        after = None
        if last_head is not None:
            verifier.resume_after(last_head)
            after = entry_id(last_head.offset)
        # Check what is new since the last checkpoint before signing it.
        fresh: dict[int, tuple[int, bytes]] = {}
        """Offset -> (seq, content digest) of each entry since the last checkpoint."""
        async for page in read_stream(self._client, stream_key(self._prefix, partition), after):
            if verifier.feed_all(page) is not None:
                raise AuditTamperError(f"the notary refuses to sign: {verifier.problem}")
            for _, fields in page:
                fresh[int(fields[b"offset"])] = (int(fields[b"seq"]), content_digest(
                    fields[b"key"], fields[b"decision"]))
        head = verifier.head
        if head is None:
            return
        await self._compare_with_topic(partition, fresh)
        # Never earlier than the checkpoint it links to, even if the wall clock stepped
        # back: verify refuses a checkpoint older than its predecessor (a backdated one).
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        last_at = self._last_at.get(partition)
        if last_at is not None and is_later(last_at, at):
            at = last_at
        checkpoint = Checkpoint(partition, head, last_digest, at, self._key_id)
        payload = checkpoint.payload()
        signature = signatures.sign(self._key, payload).hex()
        key = checkpoint_key(self._prefix, partition)
        await self._client.fcall(CHECKPOINT_FUNCTION, 1, key, payload, signature)
        # Read it back before anchoring it: a function that answers without appending (one
        # Redis' admin replaced) would otherwise have the anchor hold what Redis does not.
        stored = cast(list[StreamEntry], await self._client.xrevrange(key, count=1))
        if not stored or stored[0][1].get(b"payload") != payload:
            raise AuditTamperError(
                f"partition {partition}: Redis acknowledged the checkpoint of seq {head.seq} "
                "but does not hold it as its newest: the checkpoint function does not append "
                "(replaced? check FUNCTION LIST as admin); not anchored")
        self._last[partition] = (head, checkpoint_digest(payload), now)
        NOTARY_CHECKPOINTS.labels(str(partition)).inc()
        self._last_at[partition] = at
        log.info("checkpoint: partition %d seq %d offset %d", partition, head.seq, head.offset)
        if self._anchor is not None:
            await self._anchor.publish(checkpoint, payload, signature.encode())
            self._anchored[partition] = self._anchored.get(partition, 0) + 1

    async def _compare_with_topic(self, partition: int,
                                  fresh: dict[int, tuple[int, bytes]]) -> None:
        """Every new entry must equal the decisions topic's record at its offset."""
        if self._topic is None or not fresh:
            return
        records = await self._topic.digests(partition, min(fresh), max(fresh))
        for offset in sorted(fresh):
            seq, digest = fresh[offset]
            found = records.get(offset)
            if found == digest:
                continue
            what = "has no record there" if found is None else "holds another record there"
            log.error("TAMPERING: audit chain of partition %d seq %d offset %d differs from "
                      "the decisions topic, which %s; not signed", partition, seq, offset, what)
            raise AuditTamperError(
                f"the notary refuses to sign partition {partition}: the entry at seq {seq} "
                f"offset {offset} differs from the decisions topic, which {what}")

    async def catch_up(self) -> bool:
        """Publish to the anchor the checkpoints Redis has and the anchor lacks (the notary
        stopped between the two); a chain whose anchored checkpoints Redis no longer holds
        in order is tampering. Returns True."""
        if self._anchor is None:
            return True
        for partition in self._partitions:
            stored, anchored = await self._restore(partition)
            for number in range(len(anchored), len(stored)):
                # Only what this notary signed (it stopped before anchoring it), in its place:
                # a checkpoint appended to Redis by anyone else never gets the anchor's standing.
                payload, signature = stored[number]
                checkpoint = self._signed_by_me(payload, signature)
                if checkpoint is None:
                    raise AuditTamperError(
                        f"a checkpoint of partition {partition} in Redis that the anchor "
                        f"lacks is not signed by this notary's key {self._key_id}: forged "
                        "(run `jitwatch audit verify`); not anchored")
                _follows(partition, checkpoint, stored[number - 1][0] if number else None)
                await self._anchor.publish(checkpoint, payload, signature)
                log.info("anchored a checkpoint of partition %d the anchor lacked", partition)
            self._anchored[partition] = max(len(anchored), len(stored))
        return True

    async def restore_lost(self) -> None:
        """Put back into Redis, for every chain, the anchored checkpoints it lost."""
        for partition in self._partitions:
            await self._restore(partition)

    async def _restore(self, partition: int) -> tuple[list[tuple[bytes, bytes]],
                                                      list[tuple[bytes, bytes]]]:
        """Append to Redis the anchored checkpoints of ``partition`` that Redis lost from
        its tail (a crash inside its fsync window), as they are: the anchor is the copy only
        the notary's principal may write. Checkpoints that are not a prefix of the anchor's
        (one dropped or replaced in the middle) are tampering. Returns (stored, anchored)."""
        assert self._anchor is not None
        key = checkpoint_key(self._prefix, partition)
        stored = [checkpoint_fields(fields) async for page in read_stream(self._client, key)
                  for _, fields in page]
        anchored = await self._anchor.anchored(partition)
        if stored[:len(anchored)] != anchored[:len(stored)]:
            raise AuditTamperError(
                f"the checkpoints of partition {partition} in Redis are not the "
                f"{len(anchored)} the anchor topic {self._anchor.topic} holds (one was "
                "dropped or replaced; run `jitwatch audit verify`)")
        for payload, signature in anchored[len(stored):]:
            await self._client.fcall(CHECKPOINT_FUNCTION, 1, key, payload, signature)
            log.warning("partition %d: Redis lost an anchored checkpoint (a crash inside its "
                        "fsync window?); put back from the anchor topic", partition)
        return stored + anchored[len(stored):], anchored


def _follows(partition: int, checkpoint: Checkpoint, before: bytes | None) -> None:
    """A checkpoint stored in ``partition``'s stream after the one with payload ``before``
    (None: the first) must be that partition's and link to it: one of the notary's own,
    appended again or copied from another partition, passes the key check but not this."""
    if checkpoint.partition != partition or \
            checkpoint.prev != (GENESIS if before is None else checkpoint_digest(before)):
        raise AuditTamperError(
            f"a checkpoint of partition {partition} in Redis (seq {checkpoint.head.seq}) is "
            "another partition's or does not link to the one before it: copied, replayed or "
            "inserted (run `jitwatch audit verify`); the notary signs nothing after it")


async def run_notary(audit: AuditSettings, kafka: KafkaSettings, topics: TopicSettings,
                     stop: asyncio.Event, web: WebSettings | None = None) -> None:
    """Sign chain heads until ``stop`` is set; waits out Redis outages like the sink.
    Raises :class:`AuditTamperError` when a chain differs from the decisions topic. With
    ``web``, serves its metrics and probes meanwhile (issue K)."""
    key = load_private_key(audit.audit_signing_key_file)
    client = redis_for(audit, "notary")
    options = kafka_options(kafka)
    anchor = AnchorWriter(options, topics.topic_audit_checkpoints, audit.audit_key_prefix)
    notary = Notary(client, audit.audit_key_prefix, topics.topic_partitions, key,
                    audit.audit_checkpoint_every, audit.audit_checkpoint_interval_s,
                    TopicReader(options, topics.topic_decisions), anchor)
    log.info("notary signing %s:p* with key %s", audit.audit_key_prefix,
             signatures.fingerprint(key.public_key()))
    progress, started = Progress(), asyncio.Event()
    try:
        async with serving(None if web is None else _web(web, notary, progress, started)):
            await _notarize(notary, stop, progress, started)
    finally:
        await anchor.close()
        await client.aclose()


def _web(web: WebSettings, notary: Notary, progress: Progress,
         started: asyncio.Event) -> WebServer:
    """The notary's probes: checkpoints read and anchored, the loop coming round."""
    NOTARY_CHECKPOINT_INTERVAL.set(notary.interval_s)
    health = Health()
    health.require("checkpoints", lambda: None if started.is_set() else
                   "reading checkpoints and anchoring what the anchor topic lacks")
    health.require("progress", progress.problem)
    return WebServer(web.web_host, web.notary_web_port, NOTARY, health, ready=NOTARY_READY,
                     before_scrape=[notary.observe_ages])


async def _notarize(notary: Notary, stop: asyncio.Event, progress: Progress,
                    started: asyncio.Event) -> None:
    if await until_redis_answers(notary.load, stop, "reading checkpoints") is None:
        return
    if await until_redis_answers(notary.catch_up, stop, "anchoring checkpoints") is None:
        return
    started.set()
    while not stop.is_set():
        progress.beat()
        if await until_redis_answers(notary.tick, stop, "signing") is None:
            return
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            continue
    await until_redis_answers(lambda: notary.tick(force=True), stop, "final signing")
