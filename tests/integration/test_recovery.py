"""A request waiting while a worker rebuilds a large table is decided once it is ready.

faust suspends the flow during recovery and drops what it was handing to the stream; it
then relies on aiokafka's seek_to_committed to read it again, which skips partitions
committed at 0 or never committed (streams/seek_fix.py). Without the fix the waiting
request's partition was not consumed again until the next restart.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas._base import format_time
from streams.app import TABLE_NAME
from tests.factories import at, raw_request
from tests.integration.conftest import BOOTSTRAP, REPO, Stack, decisions_for

pytestmark = pytest.mark.integration

SUBJECTS = 200_000
"""Enough state that recovery takes ~25 s here (the skip was seen from 200k subjects on)."""


async def _preload_changelog(app_id: str, partitions: int) -> None:
    changelog = f"{app_id}-{TABLE_NAME}-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(changelog, partitions, 1,
                                            topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    granted, expires = format_time(at(0)), format_time(at(86_400))
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=20,
                                max_batch_size=1 << 20)
    await producer.start()
    try:
        for number in range(SUBJECTS):
            value = orjson.dumps({"tenants": {"default": {
                "grants": [{"request_id": f"r-{number}",
                            "resources": [{"id": "db", "env": "prod", "sensitivity": "low"}],
                            "granted_at": granted, "expires_at": expires}],
                "applied": [f"e-{number}"]}}})
            await producer.send(changelog, value, key=f"held-{number}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_request_waiting_during_a_long_recovery_is_decided(
        stack: Stack, logs: Path, tmp_path: Path) -> None:
    run = f"{stack.run}-recovery"
    own = Stack(run=run, env={  # own topics and group: the session's worker must not answer
        **stack.env,
        "JITWATCH_APP_ID": f"jitwatch-it-{run}",
        "JITWATCH_TOPIC_REQUESTS": f"it-{run}.requests",
        "JITWATCH_TOPIC_SESSIONS": f"it-{run}.sessions",
        "JITWATCH_TOPIC_DECISIONS": f"it-{run}.decisions",
        "JITWATCH_TOPIC_DEADLETTER": f"it-{run}.deadletter",
        "JITWATCH_DATA_DIR": str(tmp_path / "cold"),
    })
    created = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "streams.cli", "topics", "create"],
        cwd=REPO, env=own.env, capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    await _preload_changelog(own.env["JITWATCH_APP_ID"],
                             int(own.env["JITWATCH_TOPIC_PARTITIONS"]))
    subject = "waiting-during-recovery"
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        event = raw_request("r-wait", [("db", "prod")], subject=subject, ttl_s=600)
        await producer.send_and_wait(own.requests, orjson.dumps(event), key=subject.encode())
    finally:
        await producer.stop()
    worker = own.start("worker", logs)
    try:
        [decision] = await decisions_for(own, subject, 1, timeout_s=240)
        assert decision["action"] == "approve"
    finally:
        worker.terminate()
        worker.wait(timeout=60)
