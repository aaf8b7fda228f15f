"""What every fault scenario shares: its own topics and group on the real stack, a load of
contract events, publishing, waiting for the group to drain, and the check against
``simulate`` (issue C's oracle) that counts lost and duplicated verdicts.

Since issue H the stream decides on the broker's clock (LogAppendTime), so events claim
times close to the wall clock (within ``time.max_skew_s`` of when they are published), and
the replay is fed each event's broker time, read back from the input topics, in broker-time
order: the order and the time the stream decided them in. Deadlines then lie in the future
of the run; :func:`check` compares at a moment no deadline is close to, so a tick racing
the comparison cannot make either side look short. :func:`load` keeps to the requests topic
(the poison scenario's); the fault scenarios drive :mod:`tests.faults.mixed`'s load of both.
Every scenario's worker enforces :data:`tests.faults.mixed.POLICY`.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from policy import next_deadline
from streams.engine.codec import BROKER_TIME, decode_stored, encode_stored
from streams.engine.replay import Replay
from tests.faults.mixed import POLICY, POLICY_TEXT, Mixed
from tests.faults.report import summary
from tests.integration.conftest import BOOTSTRAP, REPO, Stack
from tests.oracle import compare, simulated

__all__ = ["POLICY", "Outcome", "broker_times", "check", "drained", "env_int",
           "event_records", "expected", "finish", "in_flight", "in_flight_now", "input_topics",
           "load", "publish", "read_all", "scenario_stack", "workers_drained"]

STALL_S = float(os.environ.get("JITWATCH_FAULTS_STALL_S") or 180)
"""How long a scenario waits without any progress before it fails as stalled."""

def env_int(name: str, local: int) -> int:
    """A size from ``JITWATCH_FAULTS_*`` (``ops/faults`` and CI set the issue's numbers),
    else a small local default that keeps ``ops/test`` quick."""
    return int(os.environ.get(name) or local)


def load(count: int, tag: str, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` request-topic events of :class:`tests.faults.mixed.Mixed` stamped from now
    on, a millisecond apart (within the policy's clock skew of the broker time they get
    when published at once): requests, withdrawals, reviews and releases."""
    mixed = Mixed(tag, max(8, count // 20), random.Random(seed), partitions=1)
    return mixed.requests(count, datetime.now(UTC))


@contextmanager
def scenario_stack(stack: Stack, name: str, data: Path, logs: Path,
                   **env: str) -> Iterator[tuple[Stack, Path]]:
    """Fresh topics, consumer groups and audit keys for one scenario, and a directory for
    its processes' logs; the processes are killed at the end (a scenario may leave them in
    any state)."""
    run = f"{name}-{uuid.uuid4().hex[:6]}"
    log_dir = logs / run
    log_dir.mkdir()
    policy = log_dir / "policy.toml"
    policy.write_text(POLICY_TEXT, encoding="utf-8")
    scenario = Stack(run=run, env={
        **stack.env,
        "JITWATCH_APP_ID": f"jitwatch-{run}",
        "JITWATCH_TOPIC_REQUESTS": f"{run}.requests",
        "JITWATCH_TOPIC_SESSIONS": f"{run}.sessions",
        "JITWATCH_TOPIC_DECISIONS": f"{run}.decisions",
        "JITWATCH_TOPIC_DEADLETTER": f"{run}.deadletter",
        "JITWATCH_TOPIC_NOTICES": f"{run}.notices",
        "JITWATCH_AUDIT_GROUP": f"jitwatch-audit-{run}",
        "JITWATCH_AUDIT_KEY_PREFIX": f"jitwatch:{run}:audit",
        "JITWATCH_DATA_DIR": str(data / "worker"),
        # Kills are noticed soonest; below 6 s a broker with default settings refuses the
        # group (group.min.session.timeout.ms).
        "JITWATCH_SESSION_TIMEOUT_S": "6",
        "JITWATCH_LOG_LEVEL": "info",  # what recovery did, should a scenario fail
        # Several workers, sinks and notaries at once, and other runs on the machine: each
        # serves its metrics and probes on a free port of its own (issue K).
        "JITWATCH_WEB_PORT": "0",
        "JITWATCH_AUDIT_WEB_PORT": "0",
        "JITWATCH_NOTARY_WEB_PORT": "0",
        "JITWATCH_POLICY_FILE": str(policy),
        **env,
    })
    created = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "streams.cli", "topics", "create"],
        cwd=REPO, env=scenario.env, capture_output=True, text=True, timeout=180, check=False)
    assert created.returncode == 0, created.stderr
    try:
        yield scenario, log_dir
    finally:
        for process in scenario.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


async def publish(stack: Stack, records: list[tuple[bytes | None, bytes]],
                  topic: str | None = None) -> list[tuple[int, int]]:
    """Send raw records in order (acks=all); returns each one's (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic or stack.requests, value, key=key)
                   for key, value in records]
        placed = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(metadata.partition, metadata.offset) for metadata in placed]


def event_records(events: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    """Contract events as records keyed by subject id."""
    return [(event["subject"]["id"].encode(), orjson.dumps(event)) for event in events]


async def _end_offsets(topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        tps = []
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic) or set()
            tps += [TopicPartition(topic, p) for p in sorted(partitions)]
        return dict(await consumer.end_offsets(tps)) if tps else {}
    finally:
        await consumer.stop()


async def read_all(topic: str) -> list[Any]:
    """Every record of ``topic`` up to its current end, in partition then offset order."""
    ends = await _end_offsets([topic])
    found: list[Any] = []
    tps = [tp for tp, end in ends.items() if end > 0]
    if not tps:  # (an aiokafka consumer stopped before it assigned anything may raise)
        return found
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = set(tps)
        while remaining:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, messages in batches.items():
                found += messages
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return sorted(found, key=lambda m: (m.partition, m.offset))


async def in_flight(group: str, topics: list[str]) -> int:
    """Records of ``topics`` that ``group`` has not committed: fetched and being decided,
    or still to fetch (what a fault striking now can lose or decide twice)."""
    ends = await _end_offsets(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    behind = 0
    for tp, end in ends.items():
        done = committed.get(tp)
        behind += end - (done.offset if done is not None and done.offset >= 0 else 0)
    return behind


async def in_flight_now(group: str, topics: list[str], wait_s: float = 10.0,
                        also: tuple[str, list[str]] | None = None) -> int:
    """What :func:`in_flight` counts (plus, with ``also``, another group's), once it is
    more than none (a fault is timed to hit work, not an idle group); 0 when the groups
    stayed caught up for ``wait_s``."""
    give_up = time.monotonic() + wait_s
    while True:
        try:
            count = await in_flight(group, topics) + (await in_flight(*also) if also else 0)
        except Exception:  # noqa: BLE001 - the broker may be restarting: ask again
            count = 0
        if count > 0 or time.monotonic() > give_up:
            return count
        await asyncio.sleep(0.05)


async def drained(group: str, topics: list[str], *, quiet_s: float = 8.0,
                  stall_s: float = STALL_S) -> float:
    """Wait until ``group`` has committed every topic to its end and stayed there for
    ``quiet_s`` (expiry ticks appear after the inputs drain); fail when its lag did not
    change for ``stall_s``. Returns the seconds waited."""
    started = time.monotonic()
    quiet_since: float | None = None
    behind, changed = -1, started
    while time.monotonic() - changed < stall_s:
        try:
            now_behind = await in_flight(group, topics)
        except Exception:  # noqa: BLE001 - the broker may be restarting: ask again
            now_behind = -1
        now = time.monotonic()
        if now_behind != behind:
            behind, changed = now_behind, now
        if behind == 0:
            quiet_since = quiet_since or now
            if now - quiet_since >= quiet_s:
                return now - started
        else:
            quiet_since = None
        await asyncio.sleep(1.0)
    raise AssertionError(f"group {group} stalled {behind} records behind on {topics}: "
                         f"no progress for {stall_s:.0f} s")


def input_topics(stack: Stack) -> list[str]:
    """What the worker group decides from: both inputs and its repartition topic."""
    return [stack.requests, stack.env["JITWATCH_TOPIC_SESSIONS"],
            f"{stack.env['JITWATCH_APP_ID']}-repartition"]


async def workers_drained(stack: Stack, quiet_s: float = 8.0) -> float:
    """Wait until the worker group has decided its inputs and its own commands topic."""
    return await drained(stack.env["JITWATCH_APP_ID"],
                         [*input_topics(stack), f"{stack.env['JITWATCH_APP_ID']}-commands"],
                         quiet_s=quiet_s)


@dataclass
class Outcome:
    """The stream against the replay, as the issue counts it."""

    decisions: int = 0
    redelivered: int = 0
    """Decision records that repeat an id (at-least-once); dropped by the dedupe."""
    lost: int = 0
    """Replay decisions the stream lacks, plus inputs the replay answers and it does not."""
    duplicates: int = 0
    """After dedupe by ``decision_id``: ids the replay does not have, or with two contents."""
    tables_differ: int = 0
    problems: list[str] = field(default_factory=list)
    reached: dict[str, int] = field(default_factory=dict)
    """How many of the replay's decisions each rule of :data:`REACHED` made."""

    @property
    def passed(self) -> bool:
        return not (self.lost or self.duplicates or self.tables_differ or self.problems)

    def __str__(self) -> str:
        return "\n".join([f"{self.decisions} decisions, {self.redelivered} redelivered, "
                          f"{self.lost} lost, {self.duplicates} duplicates, "
                          f"{self.tables_differ} table rows differ", *self.problems[:20]])


def expected(events: list[dict[str, Any]], until: datetime | None = None,
             broker_times: dict[str, tuple[datetime, int, int]] | None = None,
             ) -> tuple[list[dict[str, Any]], Replay]:
    """simulate on the same input, time run on to ``until`` (default now): its decisions
    and final states. With ``broker_times`` (event id -> the broker time, partition and
    offset its record got) each event is replayed at its broker time, in that order, as the
    stream decided it; events without one (never published) are left out."""
    replay = Replay()
    if broker_times is not None:
        placed = [event for event in events if event["event_id"] in broker_times]
        placed.sort(key=lambda event: broker_times[event["event_id"]])
        events = [{**event, BROKER_TIME: broker_times[event["event_id"]][0].isoformat()}
                  for event in placed]
    return simulated(events, POLICY, until=until or datetime.now(UTC), replay=replay), replay


async def broker_times(topics: list[str], events: list[dict[str, Any]]
                       ) -> dict[str, tuple[datetime, int, int]]:
    """Each event's broker time (LogAppendTime), partition and offset, read back from
    ``topics``: the records whose value is exactly the event as it was sent (a poisoned
    copy with the same id is not the event)."""
    sent = {orjson.dumps(event): event["event_id"] for event in events}
    found: dict[str, tuple[datetime, int, int]] = {}
    for record in [record for topic in topics for record in await read_all(topic)]:
        event_id = sent.get(bytes(record.value)) if record.value is not None else None
        if event_id is not None and event_id not in found:
            found[event_id] = (datetime.fromtimestamp(record.timestamp / 1000, UTC),
                               record.partition, record.offset)
    return found


REACHED = ("review-approved", "ttl-expired", "pending-expired", "lock-expired",
           "lock-released", "task-completed", "session-without-grant", "session-out-of-scope")
"""The rules whose paths a mixed load must reach (printed in the summary line)."""

CLEAR_S = 3.0
"""How far from any deadline the comparison's moment must be: more than a tick's grace
(0.5 s) and timer interval (0.2 s) with room for a busy machine."""


async def check(stack: Stack, events: list[dict[str, Any]],
                expectation: tuple[list[dict[str, Any]], Replay] | None = None) -> Outcome:
    """Compare the drained stream with simulate: decisions by id and content, a verdict for
    every input the replay answers, and the final grant tables.

    ``expectation`` is ignored (kept for callers that computed one before publishing): the
    replay needs the broker times the records got, so it runs here, up to a moment
    ``CLEAR_S`` before the stream was read, and again later while a deadline lies between
    that moment and the end of the reading (its tick may or may not be in what was read).
    """
    del expectation
    times = await broker_times(input_topics(stack)[:2], events)
    while True:
        read_from = datetime.now(UTC)
        records = await read_all(stack.decisions)
        changelog = await read_all(f"{stack.env['JITWATCH_APP_ID']}-grants-changelog")
        read_to = datetime.now(UTC)
        until = read_from - timedelta(seconds=CLEAR_S)
        wanted, replay = expected(events, until, times)
        upcoming = [deadline for stored in replay.states.values()
                    for state in stored.tenants.values()
                    if (deadline := next_deadline(state)) is not None]
        if not [d for d in upcoming if d <= read_to + timedelta(seconds=CLEAR_S)]:
            break
        await asyncio.sleep(2 * CLEAR_S)
    stream = [orjson.loads(record.value) for record in records]
    ours = {event["subject"]["id"] for event in events}
    stream = [decision for decision in stream if decision["subject"]["id"] in ours]
    comparison = compare(stream, wanted)
    outcome = Outcome(decisions=len(stream), redelivered=comparison.duplicates,
                      lost=len(comparison.missing),
                      duplicates=len(comparison.extra) + len(comparison.conflicting),
                      reached={rule: sum(d["rule"]["id"] == rule for d in wanted)
                               for rule in REACHED})
    if not comparison.equal:
        outcome.problems.append(str(comparison))
    answered = {decision["cause"]["event_id"] for decision in stream}
    unanswered = sorted({decision["cause"]["event_id"] for decision in wanted
                         if not decision["cause"]["event_id"].startswith("tick:")} - answered)
    outcome.lost += len(unanswered)
    if unanswered:
        outcome.problems.append(f"inputs without a verdict: {unanswered[:10]}")
    outcome.tables_differ, differences = _compare_tables(changelog, replay)
    outcome.problems += differences
    return outcome


def _compare_tables(changelog: list[Any], replay: Replay) -> tuple[int, list[str]]:
    """The worker's grant table (last changelog value per key) against the replay's."""
    table: dict[bytes, bytes | None] = {}
    for record in changelog:
        table[bytes(record.key)] = record.value
    differences = []
    for key in sorted(set(table) | set(replay.states)):
        stored = decode_stored(table.get(key))
        got = encode_stored(stored) if stored is not None else None
        want = encode_stored(replay.states[key]) if key in replay.states else None
        if got != want:
            differences.append(f"table row {key!r}: stream {got!r} vs replay {want!r}")
    return len(differences), differences[:10]


def finish(scenario: str, outcome: Outcome, *, events: int, faults: int, started: float,
           detail: str, hits: list[int] | None = None) -> None:
    """Print the scenario's summary line, then fail with the differences if any. ``hits``:
    what each fault found in flight; a fault that found nothing hit no work and fails."""
    if hits is not None:
        detail += (f"; in flight at each fault: {' '.join(map(str, hits))}; reached: "
                   + ", ".join(f"{rule} {n}" for rule, n in outcome.reached.items()))
        idle = [number for number, hit in enumerate(hits, 1) if hit <= 0]
        if idle:
            outcome.problems.append(f"faults {idle} struck an idle group (nothing in flight)")
    summary(scenario, events=events, faults=faults, lost=outcome.lost,
            duplicates=outcome.duplicates, seconds=time.monotonic() - started,
            passed=outcome.passed,
            detail=f"{outcome.decisions} decisions, {outcome.redelivered} redelivered, "
                   f"{detail}")
    assert outcome.passed, str(outcome)
