"""``jitwatch report`` reading topics that hold a record without a value (a tombstone, e.g.
one with neither key nor value on ``jit.requests``): counted and said, never a crash, never
skipped silently."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

import streams.kafka.decisions
from streams.cli import report
from streams.engine.exposure import ExposureBuilder
from tests.factories import raw_request


def _topic(values: list[bytes | None]) -> Any:
    async def read_to_end(kafka: Any, topic: str, on_total: Callable[[int], None]
                          ) -> AsyncIterator[bytes | None]:
        on_total(len(values))
        for value in values:
            yield value

    return read_to_end


def test_a_tombstone_among_the_inputs_is_counted_as_not_an_event(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(streams.kafka.decisions, "read_to_end", _topic(
        [orjson.dumps(raw_request("r-1", [("db", "prod")])), None]))
    settings = SimpleNamespace(kafka=None, worker=SimpleNamespace(max_event_bytes=65536),
                               topics=SimpleNamespace(topic_requests="jit.requests"))
    builder = ExposureBuilder()
    report._facts(settings, SimpleNamespace(events=None, inputs=True),  # type: ignore[arg-type]
                  builder)
    assert len(builder.facts) == 1
    assert "1 input records are not events" in capsys.readouterr().err


def test_a_tombstone_on_the_decisions_topic_is_an_unreadable_record(
        capsys: pytest.CaptureFixture[str]) -> None:
    builder = ExposureBuilder()
    report._fold(builder, 7, None)
    assert builder.unreadable == 1
    assert "record 7 skipped: no value" in capsys.readouterr().err
