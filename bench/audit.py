"""Audit sink throughput with the hash chain and index, and its lag behind the topic.

Run (stack up, `eval "$(ops/stack env)"`): .venv/bin/python bench/audit.py [--entries N]
    [--rate R --seconds S] [--flush-only]
Prints one line per figure: name, value, unit (and the ratio to the baseline measured in
the same run):

- audit.baseline_xadd: plain XADD pipeline of the same records (no chain, no index),
- audit.flush: RedisAuditSink add/flush (hash chain, index, append by FCALL of the audit
  function),
- audit.flush_cpu: CPU time per entry of that flush, in the sink and (as admin) in Redis,
- audit.query_*: ``jitwatch audit query``'s lookup on those chains (index, then entries),
- audit.sink_end_to_end: the real sink (``jitwatch audit sink``, its own process as
  deployed) draining a topic of N decisions,
- audit.sink_drain: the same drain from the first entry in Redis (the process's start left
  out), and the sink process's CPU per entry meanwhile,
- audit.lag_*: the sink following a producer at R decisions/s: how far (records and ms
  from the producer's acknowledgement to the entry in Redis) the chain trails the topic.

Runs as the sink's ACL user; cleans up its keys and topics as the admin user when given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from common import REPO, CpuSampler

from streams.audit import AuditRecord, RedisAuditSink, stream_key
from streams.audit.keys import redis_for
from streams.audit.query import Filters, query
from streams.audit.sink import POLL_RECORDS
from streams.cli.gc_tuning import tune_gc
from streams.settings import Settings, load_settings

PARTITIONS = 8
BATCH = POLL_RECORDS
"""Records per flush (and per baseline pipeline): what the sink takes per poll when it is
behind, as it is when its throughput is what counts. It was 5,000 until 2026-11-23:
34-38k against 38-44k entries/s with 20,000 in alternating runs (less of each flush is the
ramp, when Redis waits for the first transaction, and the drain, when the sink waits for
the last)."""
ACTIONS = ("approve", "deny", "escalate", "revoke", "lock")
RULES = ("auto-approve", "ttl-max", "max-active-resources", "exclusive-environments",
         "baseline-novel", "break-glass", "session-out-of-scope")
T0 = datetime(2026, 11, 23, tzinfo=UTC)


def decisions(count: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """(key, value) of contract-shaped decisions, ~800 bytes each."""
    rng = random.Random(seed)
    made = []
    for n in range(count):
        subject = f"spiffe://acme.example/ns/ci/sa/deployer-{rng.randrange(20_000)}"
        at = (T0 + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")
        made.append((subject.encode(), orjson.dumps({
            "schema": "jit.decision/v1", "decision_id": f"d-{n:032x}",
            "action": rng.choice(ACTIONS), "at": at, "emitted_at": at, "tenant": "acme",
            "subject": {"id": subject, "kind": "workload", "owner": "team-payments"},
            "request_id": f"r-{n}", "targets": [f"r-{n - 1}"], "resources": ["db/orders"],
            "expires_at": None, "rule": {"id": rng.choice(RULES), "description": "bench"},
            "reason": "subject holds 4 resources, limit is 3: oldest grant revoked",
            "policy": {"version": "2026-11-20.1", "sha256": "ab" * 32},
            "state": {"before": {"active_grants": 3, "active_resources": 4, "envs": ["prod"]},
                      "after": {"active_grants": 2, "active_resources": 3, "envs": ["prod"]}},
            "cause": {"event_id": f"e-{n}", "type": "request.created",
                      "topic": "jit.requests", "partition": n % PARTITIONS, "offset": n}})))
    return made


async def baseline(client: aioredis.Redis, prefix: str,
                   records: list[tuple[bytes, bytes]]) -> float:
    """Plain XADD pipelines of the same records in the same batches: entries/s."""
    started = time.perf_counter()
    for first in range(0, len(records), BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for n, (key, value) in enumerate(records[first:first + BATCH], first):
                pipe.xadd(stream_key(prefix, n % PARTITIONS),
                          {"offset": str(n // PARTITIONS), "key": key, "decision": value},
                          id=f"0-{n // PARTITIONS + 1}")
            await pipe.execute()
    return len(records) / (time.perf_counter() - started)


async def chained(client: aioredis.Redis, prefix: str,
                  records: list[tuple[bytes, bytes]]) -> tuple[float, str]:
    """RedisAuditSink add/flush in the same batches: entries/s, and the CPU time per entry
    of this process and of Redis (on a shared machine the rate swings with the neighbours'
    load, the CPU cost much less)."""
    sink = RedisAuditSink(client, prefix)
    redis_before = await redis_cpu_s()
    cpu_before = time.process_time()
    started = time.perf_counter()
    for first in range(0, len(records), BATCH):
        for n, (key, value) in enumerate(records[first:first + BATCH], first):
            sink.add(AuditRecord(n % PARTITIONS, n // PARTITIONS, key, value))
        await sink.flush()
    rate = len(records) / (time.perf_counter() - started)
    cpu = (time.process_time() - cpu_before) / len(records) * 1e6
    redis_after = await redis_cpu_s()
    redis = "" if redis_before is None or redis_after is None else \
        f", Redis {(redis_after - redis_before) / len(records) * 1e6:.1f} us/entry"
    return rate, f"audit.flush_cpu sink {cpu:.1f} us/entry{redis} (main threads' CPU time)"


async def redis_cpu_s() -> float | None:
    """Redis' CPU seconds so far (INFO cpu, as the admin user; None without one)."""
    admin = admin_client()
    if admin is None:
        return None
    try:
        info = await admin.info("cpu")
        return float(info["used_cpu_sys_main_thread"]) + float(info["used_cpu_user_main_thread"])
    finally:
        await admin.aclose()


def admin_client() -> aioredis.Redis | None:
    """The ops-only admin user's client, when ops/stack env named one."""
    user, password_file = os.environ.get("REDIS_ADMIN_USER"), \
        os.environ.get("REDIS_ADMIN_PASSWORD_FILE")
    if not (user and password_file):
        return None
    password = Path(password_file).read_text().strip()  # tiny, once
    return aioredis.Redis.from_url(load_settings().redis_url, username=user,
                                   password=password)


async def query_figures(settings: Settings, prefix: str,
                        records: list[tuple[bytes, bytes]]) -> None:
    """Query latency on the chains just written, as the read-only verifier."""
    verifier = redis_for(settings.audit, "verifier")
    subject = records[len(records) // 2][0].decode()
    since = T0 + timedelta(milliseconds=len(records) // 2)
    try:
        for name, filters in (
            ("subject", Filters(subject=subject)),
            ("action_10s", Filters(action="deny", since=since,
                                   until=since + timedelta(seconds=10))),
        ):
            started = time.perf_counter()
            found = await query(verifier, prefix, PARTITIONS, filters)
            elapsed = (time.perf_counter() - started) * 1000
            print(f"audit.query_{name} {elapsed:.1f} ms ({len(found)} of {len(records)} "
                  "entries)")
    finally:
        await verifier.aclose()


async def chain_length(client: aioredis.Redis, prefix: str) -> int:
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(PARTITIONS):
            pipe.xlen(stream_key(prefix, partition))
        return sum(await pipe.execute())


async def end_to_end(settings: Settings, client: aioredis.Redis,
                     records: list[tuple[bytes, bytes]], rate: float,
                     seconds: float) -> None:
    """The real sink, ``jitwatch audit sink`` in its own process as it is deployed, on a
    fresh topic: drain N decisions, then follow a producer."""
    topic = f"bench-audit-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=5)
    await producer.start()
    prefix = f"jitwatch:bench-{uuid.uuid4().hex[:6]}:audit"
    env = {**os.environ, "JITWATCH_TOPIC_DECISIONS": topic,
           "JITWATCH_AUDIT_KEY_PREFIX": prefix, "JITWATCH_AUDIT_GROUP": f"bench-{topic}"}
    log = tempfile.NamedTemporaryFile(prefix="jitwatch-bench-sink-", suffix=".log",  # noqa: SIM115  # closed in finally
                                      delete=False)
    sink: asyncio.subprocess.Process | None = None
    try:
        for first in range(0, len(records), BATCH):
            await asyncio.gather(*[await producer.send(topic, value, key=key,
                                                       partition=n % PARTITIONS)
                                   for n, (key, value) in enumerate(
                                       records[first:first + BATCH], first)])
        started = time.perf_counter()
        sink = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams.cli", "audit", "sink", env=env, cwd=REPO,
            stdout=log, stderr=asyncio.subprocess.STDOUT)
        cpu = CpuSampler(sink.pid)
        # The first entries seen in Redis mark the end of the sink's start (imports, group
        # join, first fetch): what follows is its steady drain rate.
        first_seen: tuple[float, float, int] | None = None
        while (chained := await chain_length(client, prefix)) < len(records):
            if sink.returncode is not None:
                raise SystemExit(f"bench/audit.py: the sink exited with {sink.returncode} "
                                 "before the topic was drained")
            if first_seen is None and chained:
                first_seen = time.perf_counter(), time.time(), chained
            await asyncio.sleep(0.01)
        finished, finished_wall = time.perf_counter(), time.time()
        elapsed = finished - started
        print(f"audit.sink_end_to_end {len(records) / elapsed:,.0f} entries/s "
              f"({len(records)} decisions from Kafka to Redis in {elapsed:.1f} s, "
              "incl. the sink process's start)")
        if first_seen is not None:
            seen_at, seen_wall, seen = first_seen
            drained = len(records) - seen
            print(f"audit.sink_drain {drained / (finished - seen_at):,.0f} entries/s "
                  f"(the same run from its first entry in Redis to its last: {drained} "
                  f"entries in {finished - seen_at:.2f} s, polled every 10 ms; the sink "
                  f"process {cpu.between(seen_wall, finished_wall) / drained * 1e6:.1f} µs "
                  "CPU per entry, Kafka included)")
        cpu.stop()
        await follow(producer, client, prefix, topic, len(records), rate, seconds)
    finally:
        ended_early = sink is not None and sink.returncode is not None
        if sink is not None and not ended_early:
            sink.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(sink.wait(), 30)
            except TimeoutError:
                sink.kill()
                await sink.wait()
        log.close()
        if sink is not None and (ended_early or sink.returncode != 0):
            print(f"(the sink's log: {log.name})")
        else:
            os.unlink(log.name)
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()
        await cleanup(prefix)


async def follow(producer: AIOKafkaProducer, client: aioredis.Redis, prefix: str,
                 topic: str, already: int, rate: float, seconds: float) -> None:
    """Produce at ``rate`` for ``seconds``; sample how far the chains trail."""
    acked: dict[tuple[int, int], float] = {}
    lag_ms: list[float] = []
    lag_records: list[int] = []
    done = asyncio.Event()
    records = decisions(int(rate * seconds), seed=11)

    async def produce() -> None:
        started = time.perf_counter()
        for n, (key, value) in enumerate(records):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            future = await producer.send(topic, value, key=key, partition=n % PARTITIONS)
            future.add_done_callback(lambda f: acked.__setitem__(
                (f.result().partition, f.result().offset), time.perf_counter()))
        await producer.flush()
        done.set()

    producing = asyncio.create_task(produce())
    heads: dict[int, int] = {}
    while True:
        async with client.pipeline(transaction=False) as pipe:
            for partition in range(PARTITIONS):
                pipe.xrevrange(stream_key(prefix, partition), count=1)
            replies = await pipe.execute()
        now = time.perf_counter()
        for partition, reply in enumerate(replies):
            if reply:
                offset = int(reply[0][1][b"offset"])
                if offset != heads.get(partition) and (partition, offset) in acked:
                    lag_ms.append((now - acked[(partition, offset)]) * 1000)
                heads[partition] = offset
        chained_count = sum(offset + 1 for offset in heads.values())
        lag_records.append(len(acked) + already - chained_count)
        if done.is_set() and chained_count >= already + len(records):
            break
        await asyncio.sleep(0.05)
    await producing
    lag_ms.sort()
    print(f"audit.lag_records_max {max(lag_records)} records (following {rate:,.0f} "
          f"decisions/s for {seconds:.0f} s)")
    if lag_ms:
        print(f"audit.lag_p50 {lag_ms[len(lag_ms) // 2]:.0f} ms")
        print(f"audit.lag_p99 {lag_ms[int(len(lag_ms) * 0.99)]:.0f} ms "
              "(producer ack to entry in Redis; sampled every 50 ms, so +0-50 ms)")


async def cleanup(prefix: str) -> None:
    """Delete the run's keys as the ops-only admin user, when there is one."""
    admin = admin_client()
    if admin is None:
        print(f"(keys {prefix}:* left behind: no REDIS_ADMIN_USER to delete them)")
        return
    try:
        keys = [key async for key in admin.scan_iter(match=f"{prefix}:*", count=10_000)]
        for first in range(0, len(keys), 10_000):
            await admin.delete(*keys[first:first + 10_000])
    finally:
        await admin.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=5_000, help="decisions/s to follow")
    parser.add_argument("--seconds", type=float, default=5, help="how long to follow")
    parser.add_argument("--flush-only", action="store_true",
                        help="only the baseline, flush and query figures (quick, no Kafka)")
    args = parser.parse_args()
    tune_gc()  # the sink's code runs here, as in `jitwatch audit sink`
    settings = load_settings()
    if settings.redis_user is None:
        # The stack's Redis has no default user: without the sink's ACL user every
        # command fails with a bare AuthenticationError deep in redis-py.
        raise SystemExit("bench/audit.py: no Redis user set (JITWATCH_REDIS_USER); run "
                         "`eval \"$(ops/stack env)\"` first (bench/run does)")
    records = decisions(args.entries)
    client = redis_for(settings.audit, "sink")
    run = uuid.uuid4().hex[:6]
    base_prefix, chain_prefix = f"jitwatch:bench-{run}-base:audit", f"jitwatch:bench-{run}:audit"
    try:
        base = await baseline(client, base_prefix, records)
        await cleanup(base_prefix)
        chain, cpu = await chained(client, chain_prefix, records)
        print(f"audit.baseline_xadd {base:,.0f} entries/s (plain XADD pipeline, no chain)")
        print(f"audit.flush {chain:,.0f} entries/s (hash chain + index, {args.entries} "
              f"entries, {len(records[0][1])} B each; {chain / base:.2f} x baseline)")
        print(cpu)
        await query_figures(settings, chain_prefix, records)
        await cleanup(chain_prefix)
        if args.flush_only:
            return
        await end_to_end(settings, client, records, args.rate, args.seconds)
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
