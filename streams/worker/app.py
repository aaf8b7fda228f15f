"""The faust shell: consume raw bytes, plan the batch with the pure core, send, then store.

Nothing here decides anything; see :mod:`streams.engine.plan` and :mod:`policy`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.types import TP, EventT

from schemas.errors import InputError
from schemas.policy import LoadedPolicy
from schemas.state import STORED_RECORD_HEADROOM
from streams.engine.codec import encode_tick, stored_deadlines
from streams.engine.dead_letters import dead_letter_limit
from streams.engine.deadlines import DeadlineIndex, GroupProgress, PartitionClock
from streams.engine.hold import Since, held_back
from streams.engine.partitioner import partition_of
from streams.engine.plan import BatchPlan, Record, Repartition, plan_batch, stored_keys
from streams.engine.topics import InputTopics
from streams.settings import KafkaSettings, TopicSettings, WorkerSettings
from streams.worker.batching import in_batches, in_slices
from streams.worker.credentials import faust_credentials
from streams.worker.group_view import GroupView
from streams.worker.observe import record_batch
from streams.worker.patches.flow import install_flow_fix
from streams.worker.patches.handoff import install_batch_handoff
from streams.worker.patches.isolation import install_isolation_fix
from streams.worker.patches.seek import install_seek_fix
from streams.worker.send import BatchProducer, send_all, unsent
from streams.worker.table import BatchedTable

__all__ = ["STREAM_BUFFER_MAX", "TABLE_NAME", "build_app", "quiet_worker"]

log = logging.getLogger(__name__)

TABLE_NAME = "grants"
"""Table of per-subject state; its changelog topic is ``<app_id>-grants-changelog``."""

STREAM_BUFFER_MAX = 1000
"""Events faust queues for the stream ahead of the agent (faust's default is 4,096).

A batch is at most 500 events, so 1,000 still keeps the next batch ready, and a revocation (where
faust waits until every event already handed to the stream is decided) has less to wait for."""


def build_app(kafka: KafkaSettings, topics: TopicSettings, worker: WorkerSettings,
              policy: LoadedPolicy | Callable[[], LoadedPolicy]) -> faust.App:
    """Build the worker's faust app and register the enforcement agent.

    ``policy`` may be a callable giving the policy in force (reloads, issue F).
    """
    install_seek_fix()  # before faust's consumer exists: see streams/worker/patches/seek.py
    install_flow_fix()  # nothing handed to the stream lost at a rebalance: patches/flow.py
    install_isolation_fix()  # an upstream producer's aborted records are never decided
    record_limit = worker.max_stored_bytes + STORED_RECORD_HEADROOM  # a value at the limit
    dead_letter_bytes = dead_letter_limit(record_limit)  # and the dead-letter topic's
    app = faust.App(
        topics.app_id,
        broker=f"kafka://{kafka.kafka_bootstrap}",
        broker_credentials=faust_credentials(kafka),
        store=worker.store,
        datadir=str(worker.data_dir),
        topic_partitions=topics.topic_partitions,
        topic_replication_factor=topics.topic_replication,
        table_standby_replicas=worker.standby_replicas,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=worker.producer_linger_ms,
        producer_max_request_size=record_limit,
        web_enabled=False,
        broker_session_timeout=worker.session_timeout_s,
        broker_heartbeat_interval=min(3.0, worker.session_timeout_s / 3),
        key_serializer="raw",
        value_serializer="raw",
        stream_buffer_maxsize=STREAM_BUFFER_MAX,
    )
    # One agent over both inputs: they are co-partitioned, so a subject's request and
    # session events meet its state on the same partition. The repartition topic brings
    # the records that landed on another partition to their subject's (issue H).
    inputs = app.topic(
        topics.topic_requests,
        topics.topic_sessions,
        topics.topic_commands,
        topics.topic_repartition,
        partitions=topics.topic_partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    table = app.Table(
        TABLE_NAME,
        default=None,
        partitions=topics.topic_partitions,
        key_type=bytes,  # bytes means the raw serializer: we encode state ourselves
        value_type=bytes,
        extra_topic_configs={"max.message.bytes": str(record_limit)},  # a new changelog's
    )

    def producer() -> Any:
        # With the hand-off on (issue M), one aiokafka batch per topic-partition.
        return BatchProducer(app.producer) if worker.batch_handoff else app.producer

    async def send(plan: BatchPlan) -> list[Any]:
        # Every verdict is acknowledged by Kafka before the state that records it is stored.
        return await send_all(producer(), [(out.topic, out.key, out.value, out.partition,
                                            out.headers)
                                           for out in plan.outbound])

    handoff = install_batch_handoff(app, frozenset(inputs.topics)) \
        if worker.batch_handoff else None
    if handoff is None:
        log.info("batch hand-off off (JITWATCH_BATCH_HANDOFF=0): faust's per-record path")
    deadlines = DeadlineIndex()
    clock = PartitionClock()
    held_since: Since = {}  # the cross-topic hold's record of what waits since when
    input_topics = (topics.topic_requests, topics.topic_sessions)
    progress = GroupProgress()
    assignment = _Assignment()
    group = GroupView(kafka, topics.app_id, input_topics, topics.topic_partitions)

    def consumer_view(owned: set[int]) -> tuple[dict[tuple[str, int], Any],
                                                dict[tuple[str, int], Any],
                                                dict[tuple[str, int], Any]]:
        # The consumer's view of the inputs the gate reads, once per timer pass: end
        # offsets as the last fetch reported them and when it did (no broker call: a call
        # through faust's consumer thread waits out its current fetch, up to 1.5 s, which
        # made ticks seconds late), and the group's committed offsets for offsets not
        # decided here yet. Every owned input partition counts (a misplaced record may wait
        # on any until it is forwarded), and the repartition topic's (forwards not
        # decided). A view older than the sends of the pass only holds a tick longer.
        committed: dict[TP, int | None] = getattr(app.consumer, "_committed_offset", {})
        ends, commits, reported = {}, {}, {}
        for topic in (*input_topics, topics.topic_repartition):
            for number in owned:
                tp = TP(topic, number)
                # When before what: a fetch answered in between makes the end offset
                # newer than the moment says (a tick waits longer), never older.
                reported[(topic, number)] = _end_reported_at(app.consumer, tp)
                ends[(topic, number)] = app.consumer.highwater(tp)
                commits[(topic, number)] = committed.get(tp)
        return ends, commits, reported

    async def enforce(stream: Any) -> None:  # a faust.Stream; faust types it loosely
        access = BatchedTable(table, producer())

        async def handle(events: Sequence[EventT[Any]]) -> list[EventT[Any]]:
            current = policy() if callable(policy) else policy  # in force now (reloads)
            return await _handle_batch(events, access=access, send=send, topics=topics,
                                       max_event_bytes=worker.max_event_bytes,
                                       max_stored_bytes=worker.max_stored_bytes,
                                       policy=current, deadlines=deadlines, clock=clock,
                                       view=consumer_view, since=held_since,
                                       max_record_bytes=dead_letter_bytes)

        if handoff is None:
            await in_batches(stream, handle, worker.batch_max)
        else:  # issue M, behind the setting: whole fetched batches, acked per batch
            await handoff.run(lambda events: in_slices(events, handle, worker.batch_max))

    async def send_ticks() -> None:
        # Timers cannot write tables: this only asks the owning partition to expire.
        cutoff = datetime.now(UTC) - timedelta(seconds=worker.expiry_grace_s)
        owned = {tp.partition for tp in app.consumer.assignment()
                 if tp.topic == topics.topic_requests}
        held: set[int] = set()  # partitions whose earlier input is still undecided
        if owned != assignment.owned:  # their earlier owners' forwards came before now
            assignment.owned, assignment.since = owned, datetime.now(UTC)
        due = deadlines.due(cutoff)
        if due and len(owned) < topics.topic_partitions and not await read_group(due):
            return
        ends, commits, reported = consumer_view(owned) if due else ({}, {}, {})
        for deadline, key, tenant in due:
            partition = partition_of(key, topics.topic_partitions)
            if partition not in owned:
                continue  # moved to another worker, which indexed it when it recovered
            if partition in held or not clock.may_expire_group(
                    input_topics, topics.topic_repartition, partition, owned,
                    topics.topic_partitions, deadline, ends, commits, reported, progress,
                    assignment.since):
                held.add(partition)  # deadlines come in order: later ones wait as well
                # restore, not set: batches decided while this loop awaited sends may have
                # given the subject a newer deadline.
                deadlines.restore(key, tenant, deadline)
                continue
            try:
                await app.producer.send(topics.topic_commands, key,
                                        encode_tick(deadline, key, tenant), partition=None,
                                        timestamp=None, headers=None)
            except Exception:
                deadlines.restore(key, tenant, deadline)  # try again on the next tick
                raise

    async def read_group(due: list[tuple[datetime, bytes, str]]) -> bool:
        # Partitions another worker owns may hold misplaced records of subjects owned here
        # (issue I): one reading of the group's progress per pass, and only when some
        # partition is owned elsewhere. A broker that does not answer holds every tick.
        try:
            await group.observe(progress)
        except Exception:  # a broker restarting: try again next pass
            log.warning("expiry gate: the group's offsets could not be read; ticks wait",
                        exc_info=True)
            for deadline, key, tenant in due:
                deadlines.restore(key, tenant, deadline)
            return False
        return True

    @app.on_before_shutdown.connect
    async def close_group_view(sender: Any, /, *args: Any, signal: Any, **kwargs: Any
                               ) -> None:
        await group.close()

    async def index_recovered() -> None:
        # After recovery (start-up, rebalance) the deadlines of recovered subjects are
        # known only to the table: grants that expired while no worker ran fire now.
        started = time.monotonic()
        count = await _index_table(table, deadlines)
        log.info("expiry index holds %d subject deadlines after recovery (table read in "
                 "%.1f s)", count, time.monotonic() - started)

    app.agent(inputs, name="enforce", concurrency=1)(enforce)
    app.timer(interval=worker.expiry_check_s, name="expiry-ticks")(send_ticks)
    table.on_recover(index_recovered)
    return app


@dataclass
class _Assignment:
    """The input partitions the expiry timer last saw this worker own, and since when."""

    owned: set[int] = field(default_factory=set)
    since: datetime | None = None


def _end_reported_at(consumer: Any, tp: TP) -> datetime | None:
    """When the broker last reported ``tp``'s end offset to this worker (aiokafka's
    ``last_poll_timestamp``: the fetch response that set ``highwater``); None when unknown,
    which holds the gate on that topic to its watermark."""
    inner = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    if inner is None:
        return None
    try:
        millis = inner.last_poll_timestamp(tp)
    except AssertionError:  # not assigned (any more)
        return None
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)


def quiet_worker(app: faust.App, log_level: str) -> faust.Worker:
    """A faust worker without its terminal spinner.

    At WARNING and above faust keeps a spinner that turns on every log record: it sets the
    root logger to DEBUG and filters in the handler, so each debug call in faust and
    aiokafka (several per event) builds a record that is then thrown away: faust's bare
    stream ran at 1,649 events/s with it and 5,139 without (bench/e2e.py's faust_stream).
    A service has no terminal to spin on anyway.
    """
    worker = faust.Worker(app, loglevel=log_level, quiet=True)
    worker.spinner = None
    return worker


async def _index_table(table: Any, deadlines: DeadlineIndex) -> int:
    # faust awaits this before it resumes the streams, so no batch runs meanwhile; with a
    # million subjects it takes seconds, so hand the loop back now and then (heartbeats,
    # timers, the fetcher) instead of stalling it for the whole table.
    found: list[tuple[datetime, bytes, str]] = []
    add = found.append  # once per subject: a plain loop, no generator
    for number, (key, value) in enumerate(_stored_items(table)):
        if number % 1000 == 999:
            await asyncio.sleep(0)
        if value is None:
            continue
        try:
            tenants = stored_deadlines(value)
        except InputError:
            log.exception("unreadable state for %r skipped by the expiry index", key[:80])
            continue
        for tenant, deadline in tenants.items():
            if deadline is None:
                deadlines.set(key, tenant, None)  # drops one held from before a rebalance
            else:
                add((deadline, key, tenant))
    deadlines.set_many(found)
    return len(deadlines)


def _stored_items(table: Any) -> Iterator[tuple[bytes, bytes | None]]:
    # The table's (key, value) bytes as stored. table.items() passes each key and value of
    # the RocksDB store through faust's serializer registry, even raw bytes: a third of
    # the recovery scan. The store's own iterator (same partitions: the active ones) gives
    # them as they are; the memory store has none, and its items() are plain dict items.
    raw: Callable[[], Iterator[tuple[bytes, bytes | None]]] | None = getattr(
        table.data, "_iteritems", None)
    return raw() if raw is not None else iter(table.items())


async def _handle_batch(
    events: Sequence[EventT[Any]],
    *,
    access: BatchedTable,
    send: Any,
    topics: TopicSettings,
    max_event_bytes: int,
    max_stored_bytes: int,
    policy: LoadedPolicy,
    deadlines: DeadlineIndex,
    clock: PartitionClock,
    max_record_bytes: int,
    view: Callable[[set[int]], tuple[Any, Any, Any]],
    since: Since | None = None,
) -> list[EventT[Any]]:
    """Decide ``events`` but those the cross-topic hold keeps back (returned, undecided:
    :mod:`streams.engine.hold`); ``view`` gives the consumer's view of some partitions."""
    records = [
        Record(
            topic=event.message.topic,
            partition=event.message.partition,
            offset=event.message.offset,
            key=event.message.key,
            value=event.message.value,
            # The broker's clock (LogAppendTime, issue H), never the producer's claim.
            timestamp=event.message.timestamp,
            timestamp_type=event.message.timestamp_type,
            headers=_headers(event.message.headers),
        )
        for event in events
    ]
    inputs = (topics.topic_requests, topics.topic_sessions)
    held = held_back(records, inputs, clock, *view({record.partition for record in records}),
                     now=datetime.now(UTC), since=since)
    later = [events[index] for index in sorted(held)]
    if held:
        events = [event for index, event in enumerate(events) if index not in held]
        records = [record for index, record in enumerate(records) if index not in held]
    if not records:
        return later
    # Each subject's state as of before the batch, read on its record's partition. A read
    # that fails becomes a dead letter of the records that needed it (plan_batch), as it
    # did when the planner read the table itself: one bad read must not stop the batch.
    stored: dict[tuple[int, bytes], bytes | Exception | None] = {}
    for where, index in stored_keys(records).items():
        try:
            stored[where] = access.get(events[index], where[1])
        except Exception as exc:  # noqa: BLE001 - handed to the planner as data
            stored[where] = exc
    plan = plan_batch(
        records,
        stored,
        policy,
        input_topics=InputTopics(requests=topics.topic_requests, sessions=topics.topic_sessions),
        decisions_topic=topics.topic_decisions,
        deadletter_topic=topics.topic_deadletter,
        max_event_bytes=max_event_bytes,
        now=lambda: datetime.now(UTC),
        commands_topic=topics.topic_commands,
        require_broker_time=True,
        max_stored_bytes=max_stored_bytes,
        repartition=Repartition(topics.topic_repartition, topics.topic_partitions),
        notices_topic=topics.topic_notices,
        max_record_bytes=max_record_bytes,  # what the producer sends: no dead letter over it
    )
    try:
        sent = await send(plan)
    except Exception as exc:
        # faust logs the traceback ("Crashed") and restarts the agent; the batch stays
        # unacknowledged (README, "Known problems"): say which records it was.
        log.error("%s", unsent(exc, records, plan.outbound))
        raise
    record_batch(records, plan, time.time(), policy, topics, max_event_bytes)  # acknowledged
    for out, metadata in zip(plan.outbound, sent, strict=True):
        if out.topic == topics.topic_repartition:  # the gate waits for it to be decided
            stamp = events[out.source].message.timestamp  # the original's broker time
            clock.expect(out.topic, metadata.partition, metadata.offset,
                         None if stamp is None else datetime.fromtimestamp(stamp, UTC))
    await access.put_all([(events[write.source], write.key, write.value)
                          for write in plan.writes.values()])
    for (key, tenant), deadline in plan.deadlines.items():
        deadlines.set(key, tenant, deadline)
    for topic, partition, offset, at in plan.decided:
        clock.decided(topic, partition, offset, at)
    if plan.dead_letters:
        log.warning("batch of %d: %d to dead letters", len(records), plan.dead_letters)
    if plan.forwarded:
        log.info("batch of %d: %d forwarded to their subject's partition", len(records),
                 plan.forwarded)
    return later


def _headers(headers: Any) -> list[tuple[str, bytes]]:
    # faust gives a message's headers as a list of pairs or a mapping (or None).
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    return [(str(name), bytes(value or b"")) for name, value in pairs]
