"""Issue K on the real stack: ``jitwatch siem`` turns a worker's decisions into OCSF events
on the OCSF topic (each validating against OCSF 1.8.0), and ``jitwatch report`` reads the
real decisions topic (expiry lateness and task-to-revoke times as the stream made them)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.factories import raw_event, raw_request
from tests.integration.conftest import REPO, Producer, Stack, decisions_for, read_topic
from tests.streams.engine.test_ocsf import _valid

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


def _now(raw: dict[str, Any]) -> dict[str, Any]:
    raw["at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return raw


async def _grants_that_end(stack: Stack, producer: Producer) -> tuple[str, list[dict[str, Any]]]:
    """One grant that expires and one ended by task.completed; their four decisions."""
    subject = f"k-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:6]
    await producer.publish(_now(raw_request("r-1", [("db", "prod")], subject=subject,
                                            ttl_s=2, event_id=f"e-1-{tag}")))
    await producer.publish(_now(raw_request("r-2", [("db2", "prod")], subject=subject,
                                            ttl_s=3600, event_id=f"e-2-{tag}")))
    await decisions_for(stack, subject, 2, timeout_s=60)
    done = _now(raw_event("task.completed", subject=subject, event_id=f"e-3-{tag}",
                          request_id="r-2"))
    await producer.raw_to(stack.env["JITWATCH_TOPIC_SESSIONS"], subject.encode(),
                          orjson.dumps(done))
    return subject, await decisions_for(stack, subject, 4, timeout_s=60)


async def test_siem_writes_every_decision_as_valid_ocsf(
        stack: Stack, producer: Producer, logs: Path) -> None:
    subject, decisions = await _grants_that_end(stack, producer)
    assert sorted(d["rule"]["id"] for d in decisions) == [
        "auto-approve", "auto-approve", "task-completed", "ttl-expired"]
    siem = stack.start("siem", logs)
    try:
        events = await read_topic(
            stack.env["JITWATCH_TOPIC_DECISIONS_OCSF"],
            lambda m: (orjson.loads(m.value), m.key)
            if orjson.loads(m.value)["user"]["uid"] == subject else None, 4, timeout_s=90)
    finally:
        siem.terminate()
        assert siem.wait(timeout=60) == 0
    for event, key in events:
        _valid(event)
        assert key == subject.encode()
    assert {e["metadata"]["uid"] for e, _ in events} == {d["decision_id"] for d in decisions}
    revokes = {e["policy"]["uid"]: e for e, _ in events if e["activity_id"] == 2}
    assert set(revokes) == {"task-completed", "ttl-expired"}
    assert all(e["disposition_id"] == 24 and e["class_uid"] == 3005 for e in revokes.values())


async def test_report_reads_the_decisions_topic(
        stack: Stack, producer: Producer, tmp_path: Path) -> None:
    await _grants_that_end(stack, producer)
    out = tmp_path / "report.html"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "streams.cli", "report", "--tenant", "default", "--inputs",
         "--out", str(out)], cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=300,
        check=False)
    assert done.returncode == 0, done.stderr
    rows = {line[:34].strip(): line[34:].strip() for line in done.stdout.splitlines()}
    assert "ttl-expired" in rows["how grants ended"]
    assert "task-completed" in rows["how grants ended"]
    # --inputs: what the requests topic says they asked (the factory's resources are low)
    assert rows["grant-hours by sensitivity"].startswith("low ")
    assert "prod" in rows["grant-hours by env"]
    # The stream's own times: an expiry is revoked after its deadline, never before.
    assert not rows["expiry lateness"].startswith("none")
    assert "-" not in rows["expiry lateness"].split(":", 1)[1]
    assert not rows["task.completed -> revoke"].startswith("none")
    assert 'id="plot-hours-by-subject" data-drawn="1"' in out.read_text(encoding="utf-8")


async def test_siem_stdout_prints_the_topic_as_ocsf(
        stack: Stack, producer: Producer, logs: Path) -> None:
    subject, decisions = await _grants_that_end(stack, producer)
    printer = stack.start("siem", logs, "--stdout")
    log = logs / f"siem-{len(stack.processes) - 1}.log"
    found: list[dict[str, Any]] = []
    try:
        for _ in range(600):
            found = [orjson.loads(line) for line in log.read_text().splitlines()
                     if line.startswith("{") and subject in line]
            if len(found) >= len(decisions):
                break
            await asyncio.sleep(0.1)
    finally:
        printer.terminate()
        assert printer.wait(timeout=60) == 0
    assert {e["metadata"]["uid"] for e in found} == {d["decision_id"] for d in decisions}
    for event in found:
        _valid(event)
