"""Issue M's correctness gate on the real stack: a committed input offset never passes an
input whose verdicts were not acknowledged and whose state was not stored, with faust's
per-record hand-off and with the batch hand-off (``JITWATCH_BATCH_HANDOFF``).

The worker runs as :mod:`tests.integration.commit_probe` on topics and a group of its own
(the session's worker and its topics are not touched), under a burst large enough that
commits happen while batches are in flight, then is restarted once, mid-burst, so the
commits around a rebalance are checked too.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.conftest import BOOTSTRAP, Stack, read_topic, stop_all
from tests.paths import REPO

pytestmark = [pytest.mark.integration]

EVENTS = 3000


def gate_env(stack: Stack, tag: str, handoff: bool, data: Path) -> dict[str, str]:
    """A worker's environment with topics and a group of its own (``gate-<tag>.*``)."""
    env = {**stack.env, "JITWATCH_APP_ID": f"jitwatch-gate-{tag}",
           "JITWATCH_DATA_DIR": str(data), "JITWATCH_BATCH_HANDOFF": str(int(handoff))}
    for topic in ("REQUESTS", "SESSIONS", "DECISIONS", "DEADLETTER", "NOTICES"):
        env[f"JITWATCH_TOPIC_{topic}"] = f"gate-{tag}.{topic.lower()}"
    return env


def start_probe(env: dict[str, str], report: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start :mod:`tests.integration.commit_probe` with ``env``, reporting to ``report``."""
    return subprocess.Popen([sys.executable, "-m", "tests.integration.commit_probe",
                             str(report)], cwd=REPO, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def create_topics(env: dict[str, str]) -> None:
    """``jitwatch topics create`` with ``env``."""
    created = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "streams.cli", "topics", "create"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stderr


def gate_request(tag: str, number: int) -> bytes:
    """Request number ``number`` of run ``tag`` (97 subjects, 5 resources)."""
    return orjson.dumps({
        "type": "request.created", "event_id": f"g-{tag}-{number}",
        "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "tenant": "default",
        "subject": {"id": f"gate-{tag}-{number % 97}", "kind": "human"},
        "request_id": f"r-{tag}-{number}",
        "resources": [{"id": f"res-{number % 5}", "env": "staging", "sensitivity": "low"}],
        "reason": "gate"})


@pytest.mark.parametrize("handoff", [False, True], ids=["per-record", "batch-handoff"])
async def test_no_commit_passes_an_undecided_input(stack: Stack, tmp_path: Path,
                                                   handoff: bool) -> None:
    tag = uuid.uuid4().hex[:6]
    env = gate_env(stack, tag, handoff, tmp_path / "data")
    await create_topics(env)
    report, log = tmp_path / "commits.jsonl", tmp_path / "worker.log"
    worker = start_probe(env, report, log)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5)
    await producer.start()
    try:
        for number in range(EVENTS):
            await producer.send(env["JITWATCH_TOPIC_REQUESTS"], gate_request(tag, number),
                                key=f"gate-{tag}-{number % 97}".encode())
            if number == EVENTS // 2:
                await producer.flush()
                await asyncio.sleep(3)  # some decided and committed, the rest in flight
                stop_all([worker])  # a clean stop: revocation with batches in flight
                worker = start_probe(env, report, log)
        await producer.flush()
        decided = await read_topic(env["JITWATCH_TOPIC_DECISIONS"],
                                   lambda message: message.value, EVENTS, timeout_s=180)
        assert len(decided) >= EVENTS
        await asyncio.sleep(3)  # a commit interval after the last verdict
    finally:
        await producer.stop()
        stop_all([worker])
    lines = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    assert lines, f"no commits seen; worker log:\n{log.read_text()[-3000:]}"
    passed = [line for line in lines if line["missing"]]
    assert not passed, passed[:5]
    requests = env["JITWATCH_TOPIC_REQUESTS"]
    top = sum(max((line["offset"] for line in lines if line["tp"] == [requests, number]),
                  default=0) for number in range(int(env["JITWATCH_TOPIC_PARTITIONS"])))
    assert top == EVENTS, f"commits reached {top} of {EVENTS}"
