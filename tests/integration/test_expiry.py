"""On-time expiry in the stream: tick commands from the timer, handled in-stream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import raw_request
from tests.integration.conftest import Producer, Stack, decisions_for, settle

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("audit_sink")]


def _now_request(request_id: str, subject: str, ttl_s: int, **extra: Any) -> dict[str, Any]:
    raw = raw_request(request_id, [("db", "prod")], subject=subject, ttl_s=ttl_s,
                      event_id=f"e-{request_id}-{uuid.uuid4().hex[:6]}", **extra)
    raw["at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return raw


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.usefixtures("worker")
async def test_grant_is_revoked_on_time_without_further_events(
    stack: Stack, producer: Producer
) -> None:
    subject = f"exp-{uuid.uuid4().hex[:8]}"
    await producer.publish(_now_request("r-1", subject, ttl_s=2))
    approve, revoke = await decisions_for(stack, subject, 2, timeout_s=30)
    assert approve["action"] == "approve"
    assert (revoke["action"], revoke["rule"]["id"], revoke["targets"]) == (
        "revoke", "ttl-expired", ["r-1"])
    assert revoke["at"] == approve["expires_at"]
    assert revoke["cause"]["type"] == "clock.tick"
    assert revoke["cause"]["topic"] == f"{stack.env['JITWATCH_APP_ID']}-commands"
    # Never early; how late is measured by the benchmark, not asserted here.
    assert _parse(revoke["emitted_at"]) >= _parse(approve["expires_at"])
    await settle()
    assert len(await decisions_for(stack, subject, 2)) == 2, "one revoke, no duplicates"


@pytest.mark.usefixtures("worker")
async def test_grant_that_expired_while_no_worker_ran_is_revoked_after_recovery(
    stack: Stack, producer: Producer, logs: Any, tmp_path: Any,
) -> None:
    subject = f"exp-{uuid.uuid4().hex[:8]}"
    await producer.publish(_now_request("r-1", subject, ttl_s=4))
    await decisions_for(stack, subject, 1, timeout_s=30)
    await settle()  # offsets and changelog committed
    assert stack.worker is not None
    stack.worker.terminate()
    assert stack.worker.wait(timeout=60) == 0
    expired_at = datetime.now(UTC)
    await settle()
    await settle()  # the grant's expiry passes while no worker runs
    stack.worker = None
    stack.restart_worker(logs, JITWATCH_DATA_DIR=str(tmp_path / "fresh"))
    approve, revoke = await decisions_for(stack, subject, 2, timeout_s=120)
    assert (revoke["action"], revoke["rule"]["id"]) == ("revoke", "ttl-expired")
    assert revoke["at"] == approve["expires_at"]
    assert _parse(revoke["at"]) <= expired_at + timedelta(seconds=4), "expired while down"
    assert _parse(revoke["emitted_at"]) > expired_at, "revoked after the restart"
