"""Trusted time on the real broker (issue H, finding 2): topics are LogAppendTime, and a
request stamped a year ahead is not granted until then; the partition keeps being decided."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.factories import raw_request
from tests.integration.conftest import BOOTSTRAP, Producer, Stack, decisions_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]

YEAR_S = 365 * 86400
MAX_TTL_S = 28800  # the packaged policy's ttl.max_s, its longest grant


async def test_topics_create_makes_log_append_time_topics(stack: Stack) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        names = [stack.requests, stack.env["JITWATCH_TOPIC_SESSIONS"], stack.decisions,
                 stack.deadletter]
        responses = await admin.describe_configs([
            ConfigResource(ConfigResourceType.TOPIC, name, {"message.timestamp.type": None})
            for name in names])
    finally:
        await admin.close()
    found = {resource[3]: dict((entry[0], entry[1]) for entry in resource[4])
             for response in responses for resource in response.resources}
    assert {name: found[name].get("message.timestamp.type") for name in names} == dict.fromkeys(
        names, "LogAppendTime")


async def test_a_request_stamped_a_year_ahead_is_not_granted_until_then(
    stack: Stack, producer: Producer
) -> None:
    subject = f"it-{uuid.uuid4().hex[:10]}"
    sent = datetime.now(UTC)
    await producer.publish(raw_request("r-future", [("db/orders", "prod")], subject=subject,
                                       t=YEAR_S, ttl_s=MAX_TTL_S))
    # The partition keeps being decided: an honest request right after is approved.
    await producer.publish(raw_request("r-now", [("db/logs", "prod")], subject=subject, t=1,
                                       event_id="e-now"))
    decisions = await decisions_for(stack, subject, 2)
    received = datetime.now(UTC)
    by_request = {d["request_id"]: d for d in decisions}
    future = by_request["r-future"]
    if future["action"] == "approve":  # granted at most until broker time + max TTL
        expires = datetime.fromisoformat(future["expires_at"].replace("Z", "+00:00"))
        assert expires <= received + timedelta(seconds=MAX_TTL_S)
    else:
        assert (future["action"], future["rule"]["id"]) == ("deny", "clock-skew")
    decided_at = datetime.fromisoformat(future["at"].replace("Z", "+00:00"))
    assert sent - timedelta(seconds=5) <= decided_at <= received  # the broker's clock
    assert (by_request["r-now"]["action"], by_request["r-now"]["rule"]["id"]) == (
        "approve", "auto-approve")
