"""The shared wait for Redis: retries outages with backoff, never credentials."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.errors import ConfigError
from streams.audit.retry import until_redis_answers


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff delays waited, without waiting them."""
    waited: list[float] = []

    async def no_wait(awaitable: object, delay: float) -> None:
        waited.append(delay)
        awaitable.close()  # type: ignore[attr-defined]  # the un-awaited stop.wait()

    monkeypatch.setattr(asyncio, "wait_for", no_wait)
    return waited


async def test_an_outage_is_retried_until_redis_answers(
        caplog: pytest.LogCaptureFixture, waits: list[float]) -> None:
    outcomes: list[BaseException | str] = [RedisConnectionError("down"),
                                           RedisTimeoutError("slow"), OSError("reset"), "ok"]

    async def action() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    with caplog.at_level(logging.WARNING, logger="streams.audit.sink"):
        assert await until_redis_answers(action, asyncio.Event(), "testing") == "ok"
    assert waits == [0.1, 0.2, 0.4]
    assert [r.getMessage() for r in caplog.records] == [
        "Redis unavailable while testing (ConnectionError); retrying in 0.1 s",
        "Redis unavailable while testing (TimeoutError); retrying in 0.2 s",
        "Redis unavailable while testing (OSError); retrying in 0.4 s"]
    assert {r.name for r in caplog.records} == {"streams.audit.sink"}


async def test_the_backoff_stops_at_five_seconds(waits: list[float]) -> None:
    failures = 8

    async def action() -> int:
        nonlocal failures
        if failures:
            failures -= 1
            raise RedisConnectionError("down")
        return 1

    assert await until_redis_answers(action, asyncio.Event(), "testing") == 1
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


async def test_a_set_stop_gives_up_on_an_outage() -> None:
    stop = asyncio.Event()
    stop.set()

    async def action() -> int:
        raise RedisConnectionError("down")

    assert await until_redis_answers(action, stop, "testing") is None


async def test_wrong_credentials_are_a_config_error_not_an_outage() -> None:
    async def action() -> int:
        raise AuthenticationError("invalid username-password pair")

    with pytest.raises(ConfigError, match="refused the credentials for signing: invalid"):
        await until_redis_answers(action, asyncio.Event(), "signing")


async def test_credentials_refused_once_are_tried_again_with_the_file_as_it_is_now() -> None:
    refusals = 1  # ops/stack rotate-secrets replaced the password file just then

    async def action() -> str:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise AuthenticationError("invalid username-password pair")
        return "ok"

    assert await until_redis_answers(action, asyncio.Event(), "signing") == "ok"
