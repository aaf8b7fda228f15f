"""``jitwatch siem`` meeting a record without a value on the decisions topic: no OCSF
event, no crash, and a warning naming it (never skipped silently)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from streams.kafka import siem
from streams.settings import TopicSettings


class _Source:
    def __init__(self, stop: asyncio.Event) -> None:
        self.stop, self.polls = stop, 0

    def subscribe(self, topics: list[str]) -> None:
        pass

    async def getmany(self, **_: Any) -> dict[Any, list[Any]]:
        self.polls += 1
        if self.polls > 1:
            self.stop.set()
            return {}
        return {"tp": [SimpleNamespace(topic="jit.decisions", partition=2, offset=9,
                                       key=None, value=None),
                       SimpleNamespace(topic="jit.decisions", partition=2, offset=10,
                                       key=b"k", value=b"decision")]}

    async def commit(self) -> None:
        pass


class _Sink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append(value)
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def test_a_tombstone_on_the_decisions_topic_is_said_and_skipped(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    stop, sink = asyncio.Event(), _Sink()

    @contextlib.asynccontextmanager
    async def consumer(*_: Any, **__: Any) -> AsyncIterator[_Source]:
        yield _Source(stop)

    @contextlib.asynccontextmanager
    async def producer(*_: Any, **__: Any) -> AsyncIterator[_Sink]:
        yield sink

    monkeypatch.setattr(siem, "consumer", consumer)
    monkeypatch.setattr(siem, "producer", producer)
    with caplog.at_level(logging.WARNING):
        written = await siem.forward(None, TopicSettings(), stop,  # type: ignore[arg-type]
                                     lambda value: b"ocsf:" + value)
    assert (written, sink.sent) == (1, [b"ocsf:decision"])
    assert "jit.decisions[2]@9 has no value" in caplog.text
