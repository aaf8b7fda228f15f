"""Fixtures for tests on the real stack: a Kafka broker (KRaft) and Redis from ``ops/stack``.

Without a reachable broker these tests skip on a laptop, and fail when ``CI`` is set.
Each test session gets its own topic names, consumer groups and audit keys, so runs never
see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests import factories
from tests.paths import REPO
from tests.processes import wait_handles_sigterm
from tests.requires import unavailable

BOOTSTRAP = os.environ.get("JITWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
REDIS_URL = os.environ.get("JITWATCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# The stack's Redis has `default` disabled: tests set up, inspect and clean up as the ops-only
# admin user (`ops/stack env`); our processes run as their own least-privilege users.
REDIS_ADMIN_USER = os.environ.get("REDIS_ADMIN_USER")
REDIS_ADMIN_PASSWORD_FILE = os.environ.get("REDIS_ADMIN_PASSWORD_FILE")


def secrets_of(env: dict[str, str]) -> list[str]:
    """The Redis passwords and the notary's private key of ``env``: never in any output."""
    found = [Path(path).read_text(encoding="utf-8").strip()
             for name, path in env.items() if name.endswith("PASSWORD_FILE")]
    key = env.get("JITWATCH_AUDIT_SIGNING_KEY_FILE")
    if key:
        found += [line for line in Path(key).read_text(encoding="utf-8").splitlines()
                  if line and not line.startswith("-----")]
    return found


def redis_admin() -> aioredis.Redis:
    """A client as the stack's admin user (or Redis' default user without ACLs)."""
    if REDIS_ADMIN_USER and REDIS_ADMIN_PASSWORD_FILE:
        password = Path(REDIS_ADMIN_PASSWORD_FILE).read_text(encoding="utf-8").strip()
        return aioredis.Redis.from_url(REDIS_URL, username=REDIS_ADMIN_USER, password=password)
    return aioredis.Redis.from_url(REDIS_URL)


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def _require_stack() -> None:
    redis_address = REDIS_URL.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    missing = [
        f"{name} at {address}"
        for name, address in (("Kafka", BOOTSTRAP.split(",")[0]), ("Redis", redis_address))
        if not _reachable(address)
    ]
    if not missing:
        return
    message = f"{' and '.join(missing)} unreachable; start them with `ops/stack up`"
    unavailable(message)


@dataclass
class Stack:
    """One test session's names on the shared stack, and the env for our processes."""

    run: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker: subprocess.Popen[bytes] | None = None
    """The worker serving the session now (restarts replace it)."""

    @property
    def requests(self) -> str:
        return self.env["JITWATCH_TOPIC_REQUESTS"]

    @property
    def decisions(self) -> str:
        return self.env["JITWATCH_TOPIC_DECISIONS"]

    @property
    def deadletter(self) -> str:
        return self.env["JITWATCH_TOPIC_DEADLETTER"]

    @property
    def notices(self) -> str:
        return self.env["JITWATCH_TOPIC_NOTICES"]

    @property
    def audit_prefix(self) -> str:
        return self.env["JITWATCH_AUDIT_KEY_PREFIX"]

    def start(self, command: str, log_dir: Path, *args: str,
              **env: str) -> subprocess.Popen[bytes]:
        """Start a ``jitwatch`` subcommand (with ``args``) in the background with this
        session's settings."""
        log = (log_dir / f"{command}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", command, *args],
            cwd=REPO, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def restart_worker(self, log_dir: Path, **env: str) -> subprocess.Popen[bytes]:
        """Stop the session's worker cleanly and start a new one (e.g. with a fresh data
        directory, so its state can only come from the changelog)."""
        if self.worker is not None:
            # A worker stopped before Python ran its SIGTERM handler dies of the signal
            # (-15): the handoff fixture, run alone, restarts the worker just started.
            wait_handles_sigterm(self.worker)
            self.worker.terminate()
            assert self.worker.wait(timeout=60) == 0, "worker did not stop cleanly"
        self.worker = self.start("worker", log_dir, **env)
        return self.worker


@pytest.fixture(autouse=True)
def _events_happen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test events are stamped relative to ``tests.factories.T0``; the worker ends grants
    on the wall clock, so on the real stack T0 must be now, or a fixed T0 becomes a grant
    already past its TTL the day after it was written (and every test then sees revokes)."""
    monkeypatch.setattr(factories, "T0", datetime.now(UTC).replace(microsecond=0))


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every background process, then wait; SIGKILL what does not stop in 30 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Session names on the real stack; topics created; processes stopped at the end."""
    _require_stack()
    run = uuid.uuid4().hex[:8]
    data = tmp_path_factory.mktemp("jitwatch-data")
    keys = tmp_path_factory.mktemp("notary-keys")
    from streams.audit.notary import generate_keys

    signing_key, verify_key = generate_keys(keys)
    env = {
        **os.environ,
        "JITWATCH_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "JITWATCH_REDIS_URL": REDIS_URL,
        "JITWATCH_APP_ID": f"jitwatch-it-{run}",
        "JITWATCH_TOPIC_REQUESTS": f"it-{run}.requests",
        "JITWATCH_TOPIC_SESSIONS": f"it-{run}.sessions",
        "JITWATCH_TOPIC_DECISIONS": f"it-{run}.decisions",
        "JITWATCH_TOPIC_DEADLETTER": f"it-{run}.deadletter",
        "JITWATCH_TOPIC_NOTICES": f"it-{run}.notices",
        "JITWATCH_TOPIC_AUDIT_CHECKPOINTS": f"it-{run}.audit-checkpoints",
        "JITWATCH_TOPIC_DECISIONS_OCSF": f"it-{run}.decisions-ocsf",
        "JITWATCH_TOPIC_PARTITIONS": "4",
        "JITWATCH_AUDIT_GROUP": f"jitwatch-audit-it-{run}",
        "JITWATCH_AUDIT_KEY_PREFIX": f"jitwatch:it-{run}:audit",
        "JITWATCH_DATA_DIR": str(data),
        "JITWATCH_LOG_LEVEL": "info",
        # Several workers, sinks and notaries at once, and other runs on the machine: each
        # serves its metrics and probes on a free port of its own (issue K).
        "JITWATCH_WEB_PORT": "0",
        "JITWATCH_AUDIT_WEB_PORT": "0",
        "JITWATCH_NOTARY_WEB_PORT": "0",
        "JITWATCH_AUDIT_SIGNING_KEY_FILE": str(signing_key),
        "JITWATCH_AUDIT_VERIFY_KEY_FILE": str(verify_key),
    }
    created = subprocess.run(
        [sys.executable, "-m", "streams.cli", "topics", "create"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert created.returncode == 0, created.stderr
    session = Stack(run=run, env=env)
    yield session
    stop_all(session.processes)


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where background processes write their output (shown when a test fails)."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def worker(stack: Stack, logs: Path) -> subprocess.Popen[bytes]:
    """One enforcement worker for the session (see Stack.restart_worker)."""
    if stack.worker is None:
        stack.worker = stack.start("worker", logs)
    return stack.worker


@pytest.fixture(params=[False, True], ids=["per-record", "batch-handoff"])
def handoff(request: pytest.FixtureRequest, stack: Stack, logs: Path,
            worker: subprocess.Popen[bytes]) -> Iterator[bool]:
    """The session's worker with the batch hand-off of issue M (the default, as started)
    and with faust's per-record hand-off (restarted with ``JITWATCH_BATCH_HANDOFF=0``, and
    back after the test). A test starting workers of its own gives them ``handoff_env``."""
    if request.param:
        yield True
        return
    stack.restart_worker(logs, JITWATCH_BATCH_HANDOFF="0")
    try:
        yield False
    finally:
        stack.restart_worker(logs)


def handoff_env(handoff: bool) -> dict[str, str]:
    """The setting for a worker a test starts itself, as the ``handoff`` fixture's."""
    return {"JITWATCH_BATCH_HANDOFF": str(int(handoff))}


@pytest.fixture(scope="session")
def audit_sink(stack: Stack, logs: Path) -> subprocess.Popen[bytes]:
    """One audit sink for the session."""
    return stack.start("audit-sink", logs)


class Producer:
    """A plain aiokafka producer, as any upstream broker would use."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic
        self.broker_times: dict[tuple[str, int, int], datetime] = {}
        """(topic, partition, offset) -> the time the broker appended the record, as its
        produce response gave it (LogAppendTime topics, issue H: what the stream decides
        on)."""

    async def publish(self, event: dict[str, Any]) -> tuple[int, int]:
        """Send one event keyed by its subject id; returns (partition, offset)."""
        return await self.raw(str(event["subject"]["id"]).encode(), orjson.dumps(event))

    async def raw(self, key: bytes | None, value: bytes | None) -> tuple[int, int]:
        """Send exact bytes (for bad input)."""
        return await self.raw_to(self.topic, key, value)

    async def raw_to(self, topic: str, key: bytes | None,
                     value: bytes | None) -> tuple[int, int]:
        """Send exact bytes to ``topic``."""
        metadata = await (await self._producer.send(topic, value, key=key))
        if metadata.timestamp is not None and metadata.timestamp >= 0:
            self.broker_times[(topic, metadata.partition, metadata.offset)] = \
                datetime.fromtimestamp(metadata.timestamp / 1000, UTC)
        return metadata.partition, metadata.offset

    def broker_time(self, partition: int, offset: int, topic: str | None = None) -> datetime:
        """The broker time of a record this producer sent (to ``topic``, default its own)."""
        return self.broker_times[(topic or self.topic, partition, offset)]


@pytest.fixture
async def producer(stack: Stack) -> AsyncIterator[Producer]:
    """Publishes to the session's requests topic."""
    client = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all",
                              max_request_size=4 * 1024 * 1024)
    await client.start()
    try:
        yield Producer(client, stack.requests)
    finally:
        await client.stop()


async def assign_from_start(consumer: AIOKafkaConsumer, topic: str, deadline: float) -> None:
    """Assign every partition of ``topic`` (waiting for its metadata until ``deadline``)
    and seek to the start."""
    partitions: set[int] = set()
    while not partitions and time.monotonic() < deadline:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)


async def read_topic(topic: str, wanted: Any, count: int, timeout_s: float = 60.0) -> list[Any]:
    """Read ``topic`` from the start with a plain consumer until ``count`` records match.

    ``wanted(message)`` returns the item to keep or None. Fails with what it found on
    timeout, so a missing verdict shows up as a clear assertion.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        await assign_from_start(consumer, topic, deadline)
        while len(found) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    item = wanted(message)
                    if item is not None:
                        found.append(item)
    finally:
        await consumer.stop()
    assert len(found) >= count, f"only {len(found)} of {count} records on {topic}: {found}"
    return found


async def decisions_for(stack: Stack, subject: str, count: int,
                        timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The first ``count`` decisions about ``subject``, in topic order."""

    def wanted(message: Any) -> dict[str, Any] | None:
        decision: dict[str, Any] = orjson.loads(message.value)
        return decision if decision["subject"]["id"] == subject else None

    return await read_topic(stack.decisions, wanted, count, timeout_s)


async def settle() -> None:
    """Give the worker a moment to emit anything it should not have."""
    await asyncio.sleep(2)


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    """A Redis client on the stack's Redis, as the ops-only admin user."""
    client = redis_admin()
    try:
        yield client
    finally:
        await client.aclose()
