"""Reaching the broker: a wrong address fails in bounded time, naming the setting."""

from __future__ import annotations

import logging

import pytest

from schemas.errors import ConfigError
from streams.kafka.admin import broker_answers
from streams.settings import load_settings


async def test_no_broker_is_a_config_error_naming_the_address_once(
    caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(kafka_bootstrap="127.0.0.1:1",  # nothing listens there
                             kafka_security_protocol="PLAINTEXT")
    caplog.set_level(logging.INFO)
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:1 within 2 s.*JITWATCH_KAFKA_BOOTSTRAP"):
        await broker_answers(settings.kafka, settings.topics, timeout_s=2)
    retrying = [r for r in caplog.records if "retrying for up to" in r.getMessage()]
    assert len(retrying) == 1
    aiokafka_errors = [r for r in caplog.records if r.name.startswith("aiokafka")
                       and r.levelno >= logging.ERROR]
    assert len(aiokafka_errors) <= 1  # the first attempt's; the retries are quiet
    assert logging.getLogger("aiokafka").level != logging.CRITICAL  # restored


def test_input_topics_without_log_append_time_are_refused_naming_the_fix() -> None:
    from streams.kafka.admin import TOPIC_CONFIGS, timestamp_problems

    assert TOPIC_CONFIGS == {"message.timestamp.type": "LogAppendTime"}
    inputs = ("jit.requests", "jit.sessions")
    assert timestamp_problems({"jit.requests": "LogAppendTime",
                               "jit.sessions": "LogAppendTime"}, inputs, "k:9092") == []
    problems = timestamp_problems({"jit.requests": "CreateTime"}, inputs, "k:9092")
    assert len(problems) == 2
    assert "input topic jit.requests has message.timestamp.type=CreateTime" in problems[0]
    assert "--entity-name jit.requests --add-config message.timestamp.type=LogAppendTime" \
        in problems[0]
    assert "jit.sessions has message.timestamp.type=unknown" in problems[1]


async def test_a_topic_the_broker_has_not_seen_yet_is_asked_about_again() -> None:
    """Right after CreateTopics a broker can answer DescribeConfigs with an error for the new
    topic: that is not a topic without LogAppendTime (a fresh stack under load refused its
    own new topics)."""
    from types import SimpleNamespace

    from streams.kafka.admin import _timestamp_types

    answers = [
        [(3, "unknown topic", 2, "t.requests", [])],
        [(0, None, 2, "t.requests", [("message.timestamp.type", "LogAppendTime")])],
    ]

    class Admin:
        async def describe_configs(self, resources: object) -> list[SimpleNamespace]:
            return [SimpleNamespace(resources=answers.pop(0))]

    assert await _timestamp_types(Admin(), ["t.requests"]) == {  # type: ignore[arg-type]
        "t.requests": "LogAppendTime"}
    assert not answers
