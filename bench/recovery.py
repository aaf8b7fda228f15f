"""A worker with N subjects in state: restart time, memory, and expiry lateness.

Run (stack up): .venv/bin/python bench/recovery.py [--subjects 1000000] [--spread 3600]
                                                   [--measure 90]

The grants changelog is written directly (one live grant per subject, the exact bytes the
worker stores, on the partition faust would use), so the state of a million subjects is
there in seconds rather than after a million decided requests. Then:

1. cold start: a worker with an empty data directory rebuilds RocksDB from the changelog;
   ``recovery.cold_s`` is the time from process start to faust's "Worker ready" (start-up,
   group join, recovery, the expiry index); a request published then must be decided.
2. expiry lateness: the grants expire evenly over ``--spread`` seconds from ``--lead``
   seconds after the start; for ``--measure`` seconds every ``ttl-expired`` revoke's
   ``emitted_at - expires_at`` is recorded (p50/p99/max) while all N deadlines are indexed.
3. restart: the worker is stopped cleanly and started again on the same RocksDB data;
   ``recovery.restart_s`` is measured as in 1.

Peak memory (VmHWM) of the worker is printed after each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from common import BOOTSTRAP, BenchRun, percentile

from schemas._base import format_time
from streams.worker.app import TABLE_NAME


def _stored(number: int, granted: datetime, expires: datetime) -> bytes:
    # The shape encode_stored gives a subject with one approved request (see
    # tests/streams: the codec round trip), built without the models for speed.
    at = format_time(granted)
    return orjson.dumps({"tenants": {"default": {
        "grants": [{"request_id": f"r-{number}",
                    "resources": [{"id": "db", "env": "prod", "sensitivity": "low"}],
                    "granted_at": at, "expires_at": format_time(expires)}],
        "applied": [f"e-{number}"], "recent_requests": [at]}}})


async def preload(run: BenchRun, subjects: int, lead: float, spread: float) -> datetime:
    """Write the changelog; returns when the first grant expires."""
    changelog = f"{run.env['JITWATCH_APP_ID']}-{TABLE_NAME}-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(changelog, run.partitions, 1,
                                            topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    await _commit_inputs(run)
    now = datetime.now(UTC)
    first = now + timedelta(seconds=lead)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=20, acks=1,
                                max_batch_size=1 << 20)
    await producer.start()
    started = time.monotonic()
    try:
        for number in range(subjects):
            expires = first + timedelta(seconds=spread * number / subjects)
            await producer.send(changelog, _stored(number, now, expires),
                                key=f"s-{number}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    print(f"recovery.preload {subjects:,} subjects in {time.monotonic() - started:.1f} s")
    return first


async def _commit_inputs(run: BenchRun) -> None:
    # A deployment with state in its tables has committed input offsets: start as one.
    group = run.env["JITWATCH_APP_ID"]
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        topics = (run.requests, run.env["JITWATCH_TOPIC_SESSIONS"], f"{group}-commands")
        tps = [TopicPartition(topic, p) for topic in topics for p in range(run.partitions)]
        consumer.assign(tps)
        await consumer.commit(dict.fromkeys(tps, 0))
    finally:
        await consumer.stop()


async def publish_probe(run: BenchRun, name: str) -> str:
    """A request waiting in the topic while the worker is down; returns its event id."""
    event = {"type": "request.created", "event_id": f"probe-{name}",
             "at": format_time(datetime.now(UTC)), "subject": {"id": f"probe-{name}"},
             "request_id": f"probe-{name}",
             "resources": [{"id": "db", "env": "prod", "sensitivity": "low"}], "ttl_s": 60}
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    await producer.send_and_wait(run.requests, orjson.dumps(event), key=event["event_id"].encode())
    await producer.stop()
    return str(event["event_id"])


def time_to_ready(run: BenchRun, name: str, waiting: bool, timeout_s: float = 900) -> float:
    """Start the worker; seconds from process start to faust's "Worker ready" (start-up,
    group join, table recovery, the expiry index), then check that a request is decided.

    ``waiting``: publish the request before the start (input pending during recovery)
    instead of after "ready". See --pending-during-recovery.
    """
    event_id = asyncio.run(publish_probe(run, name)) if waiting else ""
    log = Path(run.env["JITWATCH_DATA_DIR"]) / "worker.log"
    seen = log.stat().st_size if log.exists() else 0
    started = time.monotonic()
    run.start_worker(JITWATCH_LOG_LEVEL="info")
    ready = None
    while ready is None and time.monotonic() - started < timeout_s:
        time.sleep(0.05)
        with log.open("rb") as text:
            text.seek(seen)
            if b"Worker ready" in (written := text.read()):
                ready = time.monotonic() - started
    if ready is None:
        raise SystemExit(f"worker not ready within {timeout_s} s")
    if (index := re.search(rb"expiry index holds (\d+) .*table read in ([\d.]+) s", written)):
        print(f"recovery.{name}_index_s {float(index[2]):.1f} s "
              f"(expiry index: {int(index[1]):,} deadlines read from the table; part of {name}_s)")
    if not waiting:
        event_id = asyncio.run(publish_probe(run, name))

    async def verdict() -> float | None:
        async with contextlib.aclosing(_decisions(run, 60)) as decisions:
            async for decision in decisions:
                if decision.get("cause", {}).get("event_id") == event_id:
                    return time.monotonic() - started
        return None

    decided = asyncio.run(verdict())
    print(f"recovery.{name}_first_verdict_s "
          + (f"{decided:.1f} s" if decided is not None else "none within 60 s after ready"))
    return ready


async def _decisions(run: BenchRun, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - fresh topic
        tps = [TopicPartition(run.decisions, p)
               for p in sorted(consumer.partitions_for_topic(run.decisions) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200,
                                                    max_records=20_000)).values():
                for message in messages:
                    yield orjson.loads(message.value)
    finally:
        await consumer.stop()


async def lateness(run: BenchRun, first: datetime, measure: float) -> list[float]:
    """Lateness of the revokes due in the ``measure`` seconds after ``first``."""
    wait = (first - datetime.now(UTC)).total_seconds()
    if wait < 0:
        print(f"recovery.warning the first grants expired {-wait:.0f} s before the worker "
              "was ready; raise --lead")
    await asyncio.sleep(max(0.0, wait) + measure + 3)
    end = first + timedelta(seconds=measure)
    late: list[float] = []
    async for decision in _decisions(run, 30):
        if decision.get("rule", {}).get("id") == "ttl-expired":  # policy-load records have none
            due = datetime.fromisoformat(decision["at"])
            if due <= end:
                late.append((datetime.fromisoformat(decision["emitted_at"])
                             - due).total_seconds())
    return late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--spread", type=float, default=3600.0,
                        help="seconds over which the grants expire")
    parser.add_argument("--lead", type=float, default=None,
                        help="seconds from preload to the first expiry (default: N/8000+60)")
    parser.add_argument("--measure", type=float, default=90.0,
                        help="seconds of expiries to measure lateness over")
    parser.add_argument("--pending-during-recovery", dest="pending", action="store_true",
                        help="publish the probe request before each start instead of after "
                        "ready (see the README: such input was seen to stall its partition "
                        "after a long cold recovery)")
    args = parser.parse_args()
    lead = args.lead if args.lead is not None else args.subjects / 8000 + 60
    run = BenchRun("recovery")
    first = asyncio.run(preload(run, args.subjects, lead, args.spread))
    try:
        print(f"recovery.cold_s {time_to_ready(run, 'cold', args.pending):.1f} s "
              f"({args.subjects:,} subjects from the changelog, empty data dir)")
        print(f"recovery.cold_peak_rss {run.peak_rss_mib() or 0:,.0f} MiB")
        late = asyncio.run(lateness(run, first, args.measure))
        print(f"expiry.revoked {len(late):,} due in the first {args.measure:.0f} s "
              f"({args.subjects:,} grants live)")
        if late:
            print(f"expiry.lateness_p50 {percentile(late, 0.5) * 1000:.0f} ms")
            print(f"expiry.lateness_p99 {percentile(late, 0.99) * 1000:.0f} ms")
            print(f"expiry.lateness_max {max(late) * 1000:.0f} ms")
        print(f"expiry.peak_rss {run.peak_rss_mib() or 0:,.0f} MiB")
        run.stop_worker()
        print(f"recovery.restart_s {time_to_ready(run, 'restart', args.pending):.1f} s "
              "(same RocksDB data dir, clean stop before)")
        print(f"recovery.restart_peak_rss {run.peak_rss_mib() or 0:,.0f} MiB")
    finally:
        run.stop_worker()


if __name__ == "__main__":
    main()
