"""What the benchmarks on the real stack share: a private run (topics, group, data dir), the
worker process, request payloads, topic timestamps and percentiles.

Each run gets fresh topic names and a fresh app id, so runs never see each other's data.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

__all__ = ["BOOTSTRAP", "BenchRun", "CpuSampler", "create_topics", "percentile", "publish",
           "request_payloads", "topic_times"]

REPO = Path(__file__).resolve().parents[1]
BOOTSTRAP = os.environ.get("JITWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
ENVS = ("prod", "research", "staging")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class BenchRun:
    """One benchmark's private names on the shared stack, and its worker."""

    name: str
    partitions: int = 8
    worker: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        run = f"{self.name}-{uuid.uuid4().hex[:6]}"
        self.env = {**os.environ, "JITWATCH_KAFKA_BOOTSTRAP": BOOTSTRAP,
                    "JITWATCH_APP_ID": f"bench-{run}",
                    "JITWATCH_TOPIC_REQUESTS": f"bench-{run}.requests",
                    "JITWATCH_TOPIC_SESSIONS": f"bench-{run}.sessions",
                    "JITWATCH_TOPIC_DECISIONS": f"bench-{run}.decisions",
                    "JITWATCH_TOPIC_DEADLETTER": f"bench-{run}.deadletter",
                    "JITWATCH_TOPIC_NOTICES": f"bench-{run}.notices",
                    "JITWATCH_TOPIC_PARTITIONS": str(self.partitions),
                    "JITWATCH_DATA_DIR": tempfile.mkdtemp(prefix="jitwatch-bench-"),
                    "JITWATCH_LOG_LEVEL": os.environ.get("JITWATCH_BENCH_LOG_LEVEL", "warning"),
                    # a free port each: several workers at once (issue K)
                    "JITWATCH_WEB_PORT": "0", "JITWATCH_AUDIT_WEB_PORT": "0",
                    "JITWATCH_NOTARY_WEB_PORT": "0"}
        self.log = open(Path(self.env["JITWATCH_DATA_DIR"]) / "worker.log", "ab")  # noqa: SIM115
        subprocess.run([sys.executable, "-m", "streams.cli", "topics", "create"],
                       env=self.env, cwd=REPO, check=True, capture_output=True)

    @property
    def requests(self) -> str:
        return self.env["JITWATCH_TOPIC_REQUESTS"]

    @property
    def decisions(self) -> str:
        return self.env["JITWATCH_TOPIC_DECISIONS"]

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        """Start ``jitwatch worker``; ``JITWATCH_BENCH_PROFILE=PATH`` runs it under cProfile."""
        profile = os.environ.get("JITWATCH_BENCH_PROFILE")
        command = ([sys.executable, "-m", "cProfile", "-o", profile, "-m", "streams.cli"]
                   if profile else [sys.executable, "-m", "streams.cli"])
        self.worker = subprocess.Popen([*command, "worker"], env={**self.env, **env}, cwd=REPO,
                                       stdout=self.log, stderr=subprocess.STDOUT)
        return self.worker

    def peak_rss_mib(self) -> float | None:
        """The worker's peak resident memory so far."""
        if self.worker is None:
            return None
        status = Path(f"/proc/{self.worker.pid}/status")
        if not status.exists():
            return None
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None

    def stop_worker(self) -> None:
        """SIGINT (lets cProfile write its file), then wait."""
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGINT)
            try:
                self.worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.worker.kill()


def request_payloads(count: int, subjects: int, seed: int = 11, ttl_s: int = 3600,
                     prefix: str = "e-") -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of ``count`` request.created events over ``subjects`` subjects."""
    rng = random.Random(seed)
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for number in range(count):
        subject = f"subject-{rng.randrange(subjects)}"
        event = {"type": "request.created", "event_id": f"{prefix}{number}", "at": at,
                 "subject": {"id": subject}, "request_id": f"r-{number}",
                 "resources": [{"id": f"res-{rng.randrange(20)}", "env": rng.choice(ENVS),
                                "sensitivity": "low"}
                               for _ in range(rng.randint(1, 2))],
                 "ttl_s": ttl_s, "reason": "bench"}
        yield subject.encode(), orjson.dumps(event)


async def create_topics(names: list[str], partitions: int) -> None:
    """Create plain topics (for the baseline) with the worker's partition count."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


async def publish(topic: str, payloads: Iterator[tuple[bytes, bytes]]) -> int:
    """Publish as fast as the producer batches; returns how many were sent."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=20, acks=1,
                                max_batch_size=1 << 20)
    await producer.start()
    count = 0
    try:
        for key, value in payloads:
            await producer.send(topic, value, key=key)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


@dataclass
class CpuSampler:
    """Samples a process's CPU time (user + system) ten times a second, in a thread.

    CPU seconds per event stay comparable when other work shares the machine, where
    events per second do not: ``between`` gives the CPU a process spent in a time span.
    """

    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        stat = Path(f"/proc/{self.pid}/stat")
        while not self._stop.wait(0.1):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                return  # the process ended
            self.samples.append((time.time(), (int(fields[11]) + int(fields[12])) / tick))

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> float:
        """CPU seconds spent from wall time ``start`` to ``end`` (nearest samples)."""
        def at(moment: float) -> float:
            return min(self.samples, key=lambda sample: abs(sample[0] - moment))[1]
        return at(end) - at(start) if self.samples else 0.0


async def topic_times(topic: str, expect: int, timeout_s: float,
                      event_of: Callable[[bytes], str | None]) -> tuple[int, float, float]:
    """Read ``topic`` from the start until records for ``expect`` distinct input events
    (``event_of(value)``) arrived; returns (events covered, first and last create timestamp
    of those records). Records ``event_of`` gives no event for are neither counted nor
    timed: a run's warm-up and the worker's policy-load records would otherwise stretch
    the span by the worker's start-up."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - fresh topic
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        first, last, seen = float("inf"), 0.0, set()
        loop_deadline = time.monotonic() + timeout_s
        while len(seen) < expect and time.monotonic() < loop_deadline:
            for messages in (await consumer.getmany(timeout_ms=500,
                                                    max_records=20_000)).values():
                for message in messages:
                    event = event_of(message.value)
                    if event is None:
                        continue
                    seen.add(event)
                    first = min(first, message.timestamp / 1000)
                    last = max(last, message.timestamp / 1000)
        return len(seen), first, last
    finally:
        await consumer.stop()
