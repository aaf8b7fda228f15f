"""The whole audit path on the real stack: worker -> decisions -> sink -> chain, signed by
the notary, equal to the topic; and Redis killed (-9) and restarted mid-run loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from streams.audit import stream_key
from tests.factories import raw_request
from tests.integration.conftest import (
    REPO,
    Producer,
    Stack,
    decisions_for,
    read_topic,
    secrets_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker", "audit_sink")]


@pytest.fixture(scope="module")
def notary(stack: Stack, logs: Path) -> subprocess.Popen[bytes]:
    return stack.start("audit", logs, "notary", JITWATCH_AUDIT_CHECKPOINT_EVERY="10",
                       JITWATCH_AUDIT_CHECKPOINT_INTERVAL_S="1")


def verify(stack: Stack) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "audit", "verify", "--against-kafka"],
        cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=120, check=False)


async def verified(stack: Stack, attempts: int = 60,
                   refilling: bool = False) -> subprocess.CompletedProcess[str]:
    """Run verify --against-kafka until it passes; 2 (incomplete) while the sink catches
    up or the notary has not signed the newest entries yet, and 1 (a cut tail behind a
    checkpoint) only while the sink is ``refilling`` what Redis lost."""
    result = verify(stack)
    for _ in range(attempts):
        if result.returncode == 0 and "not signed yet" not in result.stdout:
            break
        assert refilling or result.returncode != 1, result.stdout + result.stderr
        await asyncio.sleep(2)
        result = verify(stack)
    return result


async def publish(producer: Producer, subject: str, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        await producer.publish(raw_request(f"r-{n}", [(f"db/{n}", "prod")], subject=subject,
                                           t=n))


async def test_chain_equals_topic_and_is_signed(
    stack: Stack, producer: Producer, notary: subprocess.Popen[bytes], logs: Path
) -> None:
    subject = f"audit-{uuid.uuid4().hex[:8]}"
    await publish(producer, subject, 12)
    await decisions_for(stack, subject, 12)
    result = await verified(stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "equal to the topic's" in result.stdout
    assert "INTACT" in result.stdout
    assert notary.poll() is None, "notary exited"
    logged = read_logs(logs)
    assert "checkpoint: partition" in logged
    assert not [secret for secret in secrets_of(stack.env) if secret in logged]


def restart_stack() -> None:
    """``ops/stack up`` starts what is down (Redis) and leaves Kafka running."""
    restarted = subprocess.run([str(REPO / "ops" / "stack"), "up"], cwd=REPO,
                               capture_output=True, text=True, timeout=120, check=False)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr


def read_logs(logs: Path) -> str:
    """Everything the session's processes wrote."""
    return "".join(path.read_text(errors="replace") for path in logs.iterdir())


def _stack_dir() -> Path:
    return Path(os.environ.get("JITWATCH_STACK_DIR", REPO / ".stack"))


async def test_redis_killed_and_restarted_mid_run_loses_nothing(
    stack: Stack, producer: Producer, notary: subprocess.Popen[bytes],
    audit_sink: subprocess.Popen[bytes]
) -> None:
    pidfile = _stack_dir() / "redis" / "redis.pid"
    if not pidfile.is_file():
        pytest.skip("Redis is not this stack's ops/stack Redis (no pidfile)")
    subject = f"outage-{uuid.uuid4().hex[:8]}"
    await publish(producer, subject, 5)
    await decisions_for(stack, subject, 5)

    os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
    # Enforcement does not wait for the audit trail: decisions flow while Redis is down.
    await publish(producer, subject, 10, start=5)
    await decisions_for(stack, subject, 15)
    await asyncio.sleep(3)  # the sink and the notary back off and retry meanwhile
    assert audit_sink.poll() is None, "the sink died with Redis"
    assert notary.poll() is None, "the notary died with Redis"

    restart_stack()
    await publish(producer, subject, 5, start=15)
    await decisions_for(stack, subject, 20)

    result = await verified(stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "equal to the topic's" in result.stdout
    assert audit_sink.poll() is None
    assert notary.poll() is None


async def test_entries_redis_lost_are_refilled_from_kafka(
    stack: Stack, producer: Producer, redis_client: aioredis.Redis,
    audit_sink: subprocess.Popen[bytes]
) -> None:
    """An OS crash inside the AOF's fsync second loses acknowledged appends (kill -9 does
    not: the AOF is written before Redis replies). Emulated by cutting a chain's tail; the
    sink sees its head move back and reads those offsets from Kafka again."""
    subject = f"lost-{uuid.uuid4().hex[:8]}"
    await publish(producer, subject, 6)
    [partition, *_] = await read_topic(
        stack.decisions,
        lambda m: m.partition if orjson.loads(m.value)["subject"]["id"] == subject else None, 6)
    assert (await verified(stack)).returncode == 0
    chain = stream_key(stack.audit_prefix, partition)
    entries = await redis_client.xrange(chain)
    await redis_client.delete(chain)
    for entry_id, fields in entries[: len(entries) // 2]:
        await redis_client.xadd(chain, fields, id=entry_id)
    result = await verified(stack, refilling=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert await redis_client.xlen(chain) == len(entries)
    assert audit_sink.poll() is None


async def test_the_sink_stops_loudly_when_its_chain_is_altered(
    stack: Stack, producer: Producer, redis_client: aioredis.Redis, logs: Path
) -> None:
    """A sink of its own (group and keys) sees its chain's head entry replaced."""
    prefix = f"jitwatch:it-{uuid.uuid4().hex[:8]}:audit"
    sink = stack.start("audit-sink", logs, JITWATCH_AUDIT_KEY_PREFIX=prefix,
                       JITWATCH_AUDIT_GROUP=f"{prefix}-group")
    subject = f"alter-{uuid.uuid4().hex[:8]}"
    await publish(producer, subject, 2)
    await decisions_for(stack, subject, 2)
    chains = [stream_key(prefix, p) for p in range(int(stack.env["JITWATCH_TOPIC_PARTITIONS"]))]
    for _ in range(60):
        lengths = [await redis_client.xlen(chain) for chain in chains]
        if sum(lengths) >= 2:
            break
        await asyncio.sleep(0.5)
    chain = chains[max(range(len(chains)), key=lambda i: lengths[i])]
    entries = await redis_client.xrange(chain)
    last_id, last = entries[-1]
    await redis_client.delete(chain)
    for entry_id, fields in [*entries[:-1], (last_id, {**last, b"hash": b"f" * 64})]:
        await redis_client.xadd(chain, fields, id=entry_id)
    try:
        code = await asyncio.to_thread(sink.wait, 60)
    finally:
        for key in [key async for key in redis_client.scan_iter(match=f"{prefix}:*")]:
            await redis_client.delete(key)
    assert code == 3  # a tamper stop, apart from errors (2)
    assert "TAMPER STOP (audit sink)" in read_logs(logs)
    assert "changed under the sink" in read_logs(logs)
