"""The audit sink process: every committed decision, in order, from Kafka into the chains.

Consumes ``jit.decisions`` in its own group and hands the records to the appender
(:class:`streams.audit.appender.RedisAuditSink`), which links them into one hash chain per
partition in Redis.

Redis is the source of truth for the position: on assignment the sink reads each chain's
head, refuses a head beyond the topic's end (an entry invented ahead: a tamper stop, never
a silent wait for Kafka to get there) and seeks Kafka to the head's own offset, so the head
is compared with its record before anything is appended after it. Kafka offsets are
committed only after Redis holds the entries. When Redis loses acknowledged writes (a
crash inside the AOF's one-second fsync window) the sink sees its chain head move back and
seeks Kafka back to refill the chain.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from streams.audit.appender import RedisAuditSink
from streams.audit.chain import AuditTamperError
from streams.audit.keys import redis_for
from streams.audit.retry import REDIS_DOWN, until_redis_answers
from streams.audit.transactions import AuditRecord
from streams.kafka.security import kafka_client_options
from streams.observe import Health, Progress, WebServer, serving
from streams.observe.metrics import AUDIT_LAG, AUDIT_SINK, AUDIT_SINK_READY
from streams.settings import AuditSettings, KafkaSettings, TopicSettings, WebSettings

__all__ = ["POLL_RECORDS", "TAMPER_EXIT", "run_audit_sink"]

log = logging.getLogger(__name__)

POLL_RECORDS = 20_000
"""Records the sink takes from Kafka per poll at most, so a flush's size when it is behind."""
TAMPER_EXIT = 3
"""The exit code of ``jitwatch audit sink`` (and of the notary) on a tamper stop: apart
from errors (1, 2), so a supervisor or an operator can tell "the evidence was altered"."""


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


async def run_audit_sink(audit: AuditSettings, kafka: KafkaSettings, topics: TopicSettings,
                         stop: asyncio.Event, web: WebSettings | None = None) -> None:
    """Consume committed decisions and append them to the chains until ``stop`` is set.

    Offsets are committed only after Redis holds the entries; while Redis is unreachable the
    sink keeps its batch and retries with backoff, never skipping. Raises
    :class:`AuditTamperError` (the process stops loudly) when the chain was altered. With
    ``web``, serves its metrics and probes meanwhile (issue K).
    """
    client = redis_for(audit, "sink")
    sink = RedisAuditSink(client, audit.audit_key_prefix)
    assignments = _Assignments()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.kafka_bootstrap,
        group_id=audit.audit_group,
        client_id=f"{audit.audit_group}-sink",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **kafka_client_options(kafka),
    )
    consumer.subscribe([topics.topic_decisions], listener=assignments)
    progress = Progress()
    server = None if web is None else _web(web, consumer, sink, assignments, progress)
    await consumer.start()
    log.info("audit sink consuming %s as group %s", topics.topic_decisions,
             audit.audit_group)
    next_check = time.monotonic() + 5.0
    try:
        async with serving(server):
            await _consume(consumer, sink, assignments, stop, topics, progress, next_check)
    finally:
        await consumer.stop()
        await client.aclose()


def _web(web: WebSettings, consumer: AIOKafkaConsumer, sink: RedisAuditSink,
         assignments: _Assignments, progress: Progress) -> WebServer:
    """The sink's probes: partitions assigned, chains synced, the loop coming round."""
    health = Health()
    health.require("partitions", lambda: None if consumer.assignment() else
                   "no decisions partition assigned (yet)")
    health.require("chains", lambda: None if not assignments.unsynced else
                   f"reading the chain heads of {len(assignments.unsynced)} partitions")
    health.require("progress", progress.problem)

    def lag() -> None:
        AUDIT_LAG.clear()  # partitions moved to another sink are no longer this one's
        for tp in consumer.assignment():
            end, after = consumer.highwater(tp), sink.next_offset(tp.partition)
            if end is not None and after is not None:
                AUDIT_LAG.labels(str(tp.partition)).set(max(0, end - after))

    return WebServer(web.web_host, web.audit_web_port, AUDIT_SINK, health,
                     ready=AUDIT_SINK_READY, before_scrape=[lag])


async def _consume(consumer: AIOKafkaConsumer, sink: RedisAuditSink, assignments: _Assignments,
                   stop: asyncio.Event, topics: TopicSettings, progress: Progress,
                   next_check: float) -> None:
    """The sink's loop: poll, append, commit, until ``stop``."""
    while not stop.is_set():
        progress.beat()
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
                # A record without a value is chained too (an empty decision): skipped, it
                # left a gap in the offsets, which verify must call tampering, so one
                # tombstone from a principal that may write the topic broke the trail.
                sink.add(AuditRecord(tp.partition, message.offset, message.key,
                                     message.value or b""))
        if len(sink):
            failed = False

            async def flush() -> int:
                nonlocal failed
                try:
                    return await sink.flush()
                except REDIS_DOWN:
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
        _rewind(consumer, sink, topics.topic_decisions)


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
    ends = await consumer.end_offsets(tps)
    for tp in tps:
        head = heads[tp.partition]
        if head is not None and head.offset >= ends[tp]:
            raise AuditTamperError(
                f"audit chain of partition {tp.partition}: its head (seq {head.seq}) is for "
                f"offset {head.offset}, but the topic ends before offset {ends[tp]}: an "
                "entry was invented ahead (run `jitwatch audit verify`); stopping")
        if head is None:
            await consumer.seek_to_beginning(tp)
        else:  # the head's own record again: compared with the head before appending
            consumer.seek(tp, head.offset)
        log.info("audit chain of partition %d: head seq %s, consuming from offset %s",
                 tp.partition, "-" if head is None else head.seq,
                 "start" if head is None else head.offset)
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
