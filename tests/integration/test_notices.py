"""Issue J on the real stack: an extension moves a live grant's expiry, the revoke comes at
the new time (never the old one), and an expiry-soon notice reaches ``jit.notices`` before
it, from the subject's own partition, never on the decisions topic."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from tests.factories import raw_event, raw_request
from tests.integration.conftest import (
    BOOTSTRAP,
    REPO,
    Producer,
    Stack,
    assign_from_start,
    read_topic,
    settle,
    stop_all,
)

pytestmark = [pytest.mark.integration]

TTL_S = 10
"""The grant's lifetime, and what the extension adds."""
BEFORE_S = 4
"""``notices.before_expiry_s``: the one notice comes this long before expiry."""


@pytest.fixture
def notices_stack(stack: Stack, tmp_path: Path) -> Iterator[Stack]:
    """An app of its own (topics, group, data dir) whose worker runs a policy with a short
    notice time; the session's worker, on the packaged policy, never sees its records."""
    run = uuid.uuid4().hex[:6]
    policy = tmp_path / "policy.toml"
    policy.write_text(f'version = "it-notices-{run}"\n\n[defaults.notices]\n'
                      f"before_expiry_s = [{BEFORE_S}]\n", encoding="utf-8")
    env = {**stack.env,
           "JITWATCH_APP_ID": f"{stack.env['JITWATCH_APP_ID']}-n{run}",
           "JITWATCH_TOPIC_REQUESTS": f"it-n{run}.requests",
           "JITWATCH_TOPIC_SESSIONS": f"it-n{run}.sessions",
           "JITWATCH_TOPIC_DECISIONS": f"it-n{run}.decisions",
           "JITWATCH_TOPIC_DEADLETTER": f"it-n{run}.deadletter",
           "JITWATCH_TOPIC_NOTICES": f"it-n{run}.notices",
           "JITWATCH_POLICY_FILE": str(policy),
           "JITWATCH_DATA_DIR": str(tmp_path / "data")}
    created = subprocess.run([sys.executable, "-m", "streams.cli", "topics", "create"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                             check=False)
    assert created.returncode == 0, created.stderr
    own = Stack(run=run, env=env)
    own.worker = own.start("worker", tmp_path)
    try:
        yield own
    finally:
        stop_all(own.processes)
        for log in tmp_path.glob("worker-*.log"):  # shown when the test fails
            print(log.read_text(errors="replace")[-4000:])


def _now(raw: dict[str, Any]) -> dict[str, Any]:
    raw["at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return raw


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _about(subject: str) -> Any:
    def wanted(message: Any) -> dict[str, Any] | None:
        record: dict[str, Any] = orjson.loads(message.value)
        subject_of = record.get("subject")
        return record if isinstance(subject_of, dict) and subject_of.get("id") == subject \
            else None
    return wanted


async def test_an_extension_moves_the_revoke_and_the_notice_comes_before_it(
        notices_stack: Stack, producer: Producer) -> None:
    own = notices_stack
    producer.topic = own.requests
    # A worker just started takes seconds to join its group: warm it up on another subject,
    # so the grant below is decided at once and its extension comes before the old notice.
    warm = f"warm-{uuid.uuid4().hex[:8]}"
    await producer.publish(_now(raw_request("r-0", [("db", "dev")], subject=warm,
                                            event_id=f"e-0-{warm}")))
    await read_topic(own.decisions, _about(warm), 1, timeout_s=90)
    subject = f"notice-{uuid.uuid4().hex[:8]}"
    await producer.publish(_now(raw_request("r-1", [("db", "prod")], subject=subject,
                                            ttl_s=TTL_S, event_id=f"e-1-{subject}")))
    (granted,) = await read_topic(own.decisions, _about(subject), 1, timeout_s=30)
    old_expiry = _parse(granted["expires_at"])
    # The extension must be decided before the old notice time, or that notice is due.
    assert datetime.now(UTC) < old_expiry - timedelta(seconds=BEFORE_S), (
        "the worker took too long to grant; the extension would come after the old notice")
    await producer.publish(_now(raw_event("request.extension_requested", subject=subject,
                                          event_id=f"e-2-{subject}", request_id="r-1",
                                          ttl_s=TTL_S, reason="job still running")))
    decisions = await read_topic(own.decisions, _about(subject), 3, timeout_s=60)
    _, extended, revoke = decisions
    assert (extended["action"], extended["rule"]["id"], extended["targets"]) == (
        "approve", "extension-approved", ["r-1"])
    new_expiry = _parse(extended["expires_at"])
    assert new_expiry == old_expiry + timedelta(seconds=TTL_S)
    assert (revoke["action"], revoke["rule"]["id"], revoke["cause"]["type"]) == (
        "revoke", "ttl-expired", "clock.tick")
    assert _parse(revoke["at"]) == new_expiry, "revoked at the new expiry, not the old"
    assert _parse(revoke["emitted_at"]) >= new_expiry, "never early"

    notices = await read_topic(own.notices, _about(subject), 1, timeout_s=30)
    (notice,) = notices
    assert (notice["schema"], notice["kind"], notice["request_id"]) == (
        "jit.notice/v1", "expiry-soon", "r-1")
    assert _parse(notice["due_at"]) == new_expiry
    assert _parse(notice["at"]) == new_expiry - timedelta(seconds=BEFORE_S)
    assert _parse(notice["emitted_at"]) < _parse(revoke["emitted_at"]), "notice before revoke"
    assert notice["cause"]["topic"] == f"{own.env['JITWATCH_APP_ID']}-commands"
    assert notice["policy"]["version"].startswith("it-notices-")
    await settle()
    assert [n["notice_id"] for n in await _everything(own.notices, subject)] == [
        notice["notice_id"]], "one notice, no duplicates"
    assert [d["decision_id"] for d in await _everything(own.decisions, subject)] == [
        d["decision_id"] for d in decisions], "no revoke at the old expiry, no notice there"


async def _everything(topic: str, subject: str, seconds: float = 3.0) -> list[dict[str, Any]]:
    """Every record about ``subject`` on ``topic`` that a few seconds of reading find."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    found: list[dict[str, Any]] = []
    wanted = _about(subject)
    try:
        deadline = time.monotonic() + seconds
        await assign_from_start(consumer, topic, deadline + 30)
        while time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                found += [item for item in map(wanted, messages) if item is not None]
    finally:
        await consumer.stop()
    return found
