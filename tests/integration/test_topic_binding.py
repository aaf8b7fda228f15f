"""Topic binding on the real broker: a request smuggled onto the sessions topic is a dead
letter (``wrong-topic``), never decided; the same request on the requests topic is."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from tests.factories import raw_request
from tests.integration.conftest import Producer, Stack, decisions_for, read_topic, settle

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


async def test_a_request_on_the_sessions_topic_is_dead_lettered_not_decided(
    stack: Stack, producer: Producer
) -> None:
    subject = f"it-{uuid.uuid4().hex[:10]}"
    sessions = stack.env["JITWATCH_TOPIC_SESSIONS"]
    smuggled = orjson.dumps(raw_request("r-smuggled", [("db/orders", "prod")],
                                        subject=subject))
    where = await producer.raw_to(sessions, subject.encode(), smuggled)
    await producer.publish(raw_request("r-good", [("db/orders", "prod")], subject=subject,
                                       t=1))

    def ours(message: Any) -> tuple[bytes, bytes, dict[str, bytes]] | None:
        headers = dict(message.headers)
        if (headers.get("source.topic") != sessions.encode()
                or (int(headers["source.partition"]), int(headers["source.offset"])) != where):
            return None
        return message.key, message.value, headers

    [(key, value, headers)] = await read_topic(stack.deadletter, ours, 1)
    assert (key, value) == (subject.encode(), smuggled), "original bytes must be kept"
    assert headers["error.class"] == b"wrong-topic"
    message = headers["error.message"].decode()
    assert "request.created" in message
    assert repr(sessions) in message
    assert repr(stack.requests) in message

    [decision] = await decisions_for(stack, subject, 1)
    assert (decision["action"], decision["request_id"]) == ("approve", "r-good")
    assert decision["cause"]["topic"] == stack.requests
    await settle()
    # Exactly one decision about the subject: the smuggled request was never decided.
    with pytest.raises(AssertionError, match="only 1 of 2 records"):
        await decisions_for(stack, subject, 2, timeout_s=5)
