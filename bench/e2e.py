"""End-to-end figures of one worker on the real stack, with a bare aiokafka baseline.

Run (stack up):
  .venv/bin/python bench/e2e.py throughput [--events N] [--subjects N]
  .venv/bin/python bench/e2e.py latency [--rate EVENTS_PER_S] [--seconds S] [--warm-up S]

throughput: N request events are published first; then one worker decides them all. The
figure is N over the time between the first and the last verdict's create timestamp
(startup and group join excluded: the warm-up's and the policy-load records are not
timed). In the same run, a bare aiokafka consume -> produce passthrough (``passthrough``
below: same payloads, same partitions, batched sends, offsets committed after the acks, as
the worker does) is timed the same way: the physical baseline. Two faust baselines follow
(bench/faust_floor.py): the worker's shape without the policy, and faust's bare stream.
Each figure also comes as process CPU per event, which holds when other work shares the
machine, where events/s does not.

latency: a worker runs; events are offered at a steady rate; for each event the time from
just before ``send`` to its first verdict arriving at a plain consumer is recorded. The
first ``--warm-up`` seconds (default 1) of that load are reported apart, as
``latency.at_<rate>_per_s.warm_up_*``: the worker's first batches after start-up took up to
~100 ms (cold code paths, the first fetches of each partition), about 2 % of a 10 s run,
which set the p99 of the whole run on their own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from common import (
    BOOTSTRAP,
    BenchRun,
    CpuSampler,
    create_topics,
    percentile,
    publish,
    request_payloads,
    topic_times,
)

from streams.cli.gc_tuning import tune_gc

HERE = Path(__file__).resolve().parent
WARM_UP = "warm-up-"


def _cause(value: bytes) -> str | None:
    """The input event a decision answers; None for the worker's policy-load records."""
    decision: dict[str, Any] = orjson.loads(value)
    if "action" not in decision:
        return None  # jit.policy-load/v1: written at start-up, answers no event
    cause = decision.get("cause") or {}
    return cause.get("event_id") if isinstance(cause, dict) else None


def _measured(value: bytes) -> str | None:
    """As ``_cause``, for the measured events only (not the warm-up)."""
    event = _cause(value)
    return event if event is not None and not event.startswith(WARM_UP) else None


def _event_id(value: bytes) -> str | None:
    event: dict[str, Any] = orjson.loads(value)
    return str(event["event_id"])


async def _warm_up(run: BenchRun) -> None:
    # One event decided means the worker has joined the group and owns every partition.
    await publish(run.requests, request_payloads(1, 1, seed=1, prefix=WARM_UP))
    covered, _, _ = await topic_times(run.decisions, 1, 120, _cause)
    if covered < 1:
        raise SystemExit("worker did not decide the warm-up event within 120 s")


def throughput(events: int, subjects: int) -> None:
    """Worker and passthrough over the same payloads; prints both and the ratio."""
    run = BenchRun("e2e")
    run.start_worker()
    try:
        asyncio.run(_warm_up(run))
        run.stop_worker()  # publish with the worker stopped: it then starts on a full topic
        payloads = list(request_payloads(events, subjects))
        asyncio.run(publish(run.requests, iter(payloads)))
        cpu = CpuSampler(run.start_worker().pid)
        covered, first, last = asyncio.run(topic_times(run.decisions, events, 900, _measured))
        rss = run.peak_rss_mib()
    finally:
        run.stop_worker()
    cpu.stop()
    span = last - first
    worker_rate = covered / span if span > 0 else 0.0
    print(f"e2e.worker.events_per_s {worker_rate:,.0f} events/s ({covered} of {events})")
    _print_cpu("worker", cpu.between(first, last), covered)
    if rss is not None:
        print(f"e2e.worker.peak_rss {rss:,.0f} MiB")

    base_rate = _baseline(run, payloads, "passthrough",
                          lambda source, sink: [sys.executable, str(HERE / "e2e.py"),
                                                "passthrough", source, sink,
                                                f"bench-passthrough-{uuid.uuid4().hex[:6]}"])
    def floor(source: str, sink: str) -> list[str]:
        return [sys.executable, str(HERE / "faust_floor.py")]

    floor_rate = _baseline(run, payloads, "faust_floor", floor)
    stream_rate = _baseline(run, payloads, "faust_stream", floor, FLOOR_TABLE="0")
    for name, rate in (("passthrough", base_rate), ("faust_floor", floor_rate),
                       ("faust_stream", stream_rate)):
        if rate:
            print(f"e2e.worker_vs_{name} {worker_rate / rate:.2f} x")


def _baseline(run: BenchRun, payloads: list[tuple[bytes, bytes]], name: str,
              command: Callable[[str, str], list[str]], **extra_env: str) -> float:
    """Time one baseline process over the same payloads; prints and returns its rate."""
    source, sink = f"{run.requests}.{name}", f"{run.decisions}.{name}"
    asyncio.run(create_topics([source, sink], run.partitions))
    asyncio.run(publish(source, iter(payloads)))
    data = Path(run.env["JITWATCH_DATA_DIR"]) / name
    env = {**run.env, "FLOOR_SOURCE": source, "FLOOR_SINK": sink, "FLOOR_DATA": str(data),
           "FLOOR_APP": f"bench-{name}-{uuid.uuid4().hex[:6]}", **extra_env}
    process = subprocess.Popen(command(source, sink), env=env, cwd=HERE,
                               stdout=run.log, stderr=subprocess.STDOUT)
    cpu = CpuSampler(process.pid)
    try:
        passed, first, last = asyncio.run(topic_times(sink, len(payloads), 900, _event_id))
    finally:
        cpu.stop()
        process.kill()
        process.wait(timeout=30)
    span = last - first
    rate = passed / span if span > 0 else 0.0
    print(f"e2e.{name}.events_per_s {rate:,.0f} events/s ({passed} of {len(payloads)})")
    _print_cpu(name, cpu.between(first, last), passed)
    return rate


def _print_cpu(name: str, seconds: float, events: int) -> None:
    # CPU per event holds when other work shares the machine; events/s does not.
    if events and seconds > 0:
        print(f"e2e.{name}.cpu_per_event {seconds / events * 1e6:,.0f} us "
              f"(process CPU, user + system)")


async def passthrough(source: str, sink: str, group: str) -> None:
    """The baseline: consume a batch, produce each record unchanged, await acks, commit."""
    consumer = AIOKafkaConsumer(source, bootstrap_servers=BOOTSTRAP, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 << 20)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5,
                                max_batch_size=1 << 20)
    await consumer.start()
    await producer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            futures = [await producer.send(sink, message.value, key=message.key)
                       for messages in batches.values() for message in messages]
            await asyncio.gather(*futures)
            if futures:
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


async def _offer(run: BenchRun, rate: int, seconds: float,
                 warm_up_s: float) -> tuple[list[float], list[float]]:
    """Offer ``rate`` events/s for ``warm_up_s`` then ``seconds``; the latencies of each."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    warm_up: list[float] = []
    warm_up_events = int(rate * warm_up_s)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    await consumer._client.force_metadata_update()  # noqa: SLF001 - fresh topic
    tps = [TopicPartition(run.decisions, p)
           for p in sorted(consumer.partitions_for_topic(run.decisions) or ())]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks=1, linger_ms=0)
    await producer.start()
    total = warm_up_events + int(rate * seconds)
    stop = asyncio.Event()

    async def read() -> None:
        while not stop.is_set():
            for messages in (await consumer.getmany(timeout_ms=50)).values():
                seen = time.perf_counter()
                for message in messages:
                    cause = _cause(message.value) or ""
                    started = sent.pop(cause, None)
                    if started is not None:
                        early = int(cause.removeprefix("e-")) < warm_up_events
                        (warm_up if early else latencies).append(seen - started)
            if len(latencies) + len(warm_up) >= total:
                stop.set()

    reader = asyncio.create_task(read())
    tick = 0.01  # send in 10 ms slices: steady load without one task per event
    payloads = request_payloads(total, 20_000, seed=5)
    began = time.perf_counter()
    for number, (key, value) in enumerate(payloads):
        due = began + number / rate
        if due - time.perf_counter() > tick:
            await asyncio.sleep(due - time.perf_counter())
        sent[f"e-{number}"] = time.perf_counter()
        await producer.send(run.requests, value, key=key)
    await producer.flush()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=60)
    stop.set()
    await reader
    await producer.stop()
    await consumer.stop()
    return warm_up, latencies


def latency(rate: int, seconds: float, warm_up_s: float) -> None:
    """Decision latency at a steady offered load, after a warm-up at that load."""
    run = BenchRun("latency")
    run.start_worker()
    try:
        asyncio.run(_warm_up(run))
        warm_up, latencies = asyncio.run(_offer(run, rate, seconds, warm_up_s))
    finally:
        run.stop_worker()
    total = int(rate * seconds)
    name = f"latency.at_{rate}_per_s"
    print(f"{name}.decided {len(latencies)} of {total} events (offered for {seconds:.0f} s "
          f"after {warm_up_s:.0f} s of warm-up at the same rate)")
    for label, found in (("", latencies), ("warm_up_", warm_up)):
        if found:
            print(f"{name}.{label}p50 {percentile(found, 0.5) * 1000:.1f} ms")
            print(f"{name}.{label}p99 {percentile(found, 0.99) * 1000:.1f} ms")
            print(f"{name}.{label}max {max(found) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    through = commands.add_parser("throughput")
    through.add_argument("--events", type=int, default=100_000)
    through.add_argument("--subjects", type=int, default=10_000)
    late = commands.add_parser("latency")
    late.add_argument("--rate", type=int, default=5_000)
    late.add_argument("--seconds", type=float, default=20.0)
    late.add_argument("--warm-up", type=float, default=1.0,
                      help="seconds of load first, reported apart (default 1)")
    relay = commands.add_parser("passthrough")
    relay.add_argument("source")
    relay.add_argument("sink")
    relay.add_argument("group")
    args = parser.parse_args()
    tune_gc()  # the passthrough baseline runs as the worker does
    if args.command == "throughput":
        throughput(args.events, args.subjects)
    elif args.command == "latency":
        latency(args.rate, args.seconds, args.warm_up)
    else:
        asyncio.run(passthrough(args.source, args.sink, args.group))


if __name__ == "__main__":
    main()
