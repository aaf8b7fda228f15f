"""Expiry lateness on the real stack: how long after ``expires_at`` each revoke is emitted.

Run (stack up): .venv/bin/python bench/expiry.py [--grants N] [--spread S]
Starts its own worker (fresh app id, topics and data dir), publishes N requests for N
subjects whose grants expire spread over S seconds after a lead time, waits for every
``ttl-expired`` revoke and prints p50/p99/max lateness (emitted_at - expires_at), the time
to decide the N requests, and the worker's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from common import REPO

BOOTSTRAP = os.environ.get("JITWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds expiries span")
    parser.add_argument("--lead", type=float, default=None,
                        help="seconds from start to the first expiry (default: grants/8000+20)")
    args = parser.parse_args()
    lead = args.lead if args.lead is not None else args.grants / 8000 + 20
    run = uuid.uuid4().hex[:6]
    data = tempfile.mkdtemp(prefix="jitwatch-bench-")
    env = {**os.environ, "JITWATCH_KAFKA_BOOTSTRAP": BOOTSTRAP,
           "JITWATCH_APP_ID": f"bench-{run}", "JITWATCH_TOPIC_REQUESTS": f"bench-{run}.requests",
           "JITWATCH_TOPIC_SESSIONS": f"bench-{run}.sessions",
           "JITWATCH_TOPIC_DECISIONS": f"bench-{run}.decisions",
           "JITWATCH_TOPIC_DEADLETTER": f"bench-{run}.deadletter",
           "JITWATCH_TOPIC_NOTICES": f"bench-{run}.notices",
           "JITWATCH_DATA_DIR": data, "JITWATCH_LOG_LEVEL": "warning"}
    cli = [sys.executable, "-m", "streams.cli"]
    subprocess.run([*cli, "topics", "create"], env=env, cwd=REPO, check=True,
                   capture_output=True)
    profile = os.environ.get("JITWATCH_BENCH_PROFILE")  # a path: cProfile the worker
    command = ([sys.executable, "-m", "cProfile", "-o", profile, "-m", "streams.cli"]
               if profile else cli)
    worker = subprocess.Popen([*command, "worker"], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)  # join the group
        asyncio.run(measure(args.grants, args.spread, lead, env))
    finally:
        status = Path(f"/proc/{worker.pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    print(f"expiry.worker_peak_rss {int(line.split()[1]) / 1024:.0f} MiB")
        worker.send_signal(signal.SIGINT)  # lets cProfile write its file
        worker.wait(timeout=60)


async def measure(grants: int, spread: float, lead: float, env: dict[str, str]) -> None:
    """Publish, then collect the revokes and print the figures."""
    start = datetime.now(UTC)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5, acks=1)
    await producer.start()
    sent = time.monotonic()
    for number in range(grants):
        subject = f"s-{number}"
        ttl = lead + spread * number / grants
        event = {"type": "request.created", "event_id": f"e-{number}",
                 "at": start.isoformat().replace("+00:00", "Z"),
                 "subject": {"id": subject}, "request_id": f"r-{number}",
                 "resources": [{"id": "db", "env": "prod", "sensitivity": "low"}],
                 "ttl_s": max(1, round(ttl))}
        await producer.send(env["JITWATCH_TOPIC_REQUESTS"], orjson.dumps(event),
                            key=subject.encode())
    await producer.flush()
    await producer.stop()
    print(f"expiry.publish_s {time.monotonic() - sent:.1f} s ({grants} requests)")

    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(env["JITWATCH_TOPIC_DECISIONS"], p) for p in range(8)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    approved, late, decided_at = 0, [], None
    deadline = time.monotonic() + lead + spread + 300
    while len(late) < grants and time.monotonic() < deadline:
        for messages in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
            for message in messages:
                decision = orjson.loads(message.value)
                if decision.get("action") == "approve":  # policy-load records have none
                    approved += 1
                    if approved == grants:
                        decided_at = time.monotonic()
                elif decision.get("rule", {}).get("id") == "ttl-expired":
                    emitted = _time(decision["emitted_at"])
                    due = _time(decision["at"])
                    late.append((emitted - due).total_seconds())
    await consumer.stop()
    if decided_at is not None:
        print(f"expiry.decide_requests_per_s {grants / (decided_at - sent):,.0f} events/s")
    print(f"expiry.revoked {len(late)} of {grants}")
    if late:
        print(f"expiry.lateness_p50 {_percentile(late, 0.5) * 1000:.0f} ms")
        print(f"expiry.lateness_p99 {_percentile(late, 0.99) * 1000:.0f} ms")
        print(f"expiry.lateness_max {max(late) * 1000:.0f} ms")
        print(f"expiry.early {sum(value < 0 for value in late)} revokes before expires_at")


if __name__ == "__main__":
    main()
