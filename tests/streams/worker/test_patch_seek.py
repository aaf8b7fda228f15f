"""seek_fix: every input partition goes back to its committed offset (or its beginning);
changelog partitions keep the position faust's recovery gave them."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.worker.patches import seek as seek_fix

_COMMITTED_AT_ZERO = TopicPartition("jit.requests", 0)
_NEVER_COMMITTED = TopicPartition("jit.requests", 1)
_COMMITTED = TopicPartition("jit.sessions", 0)
_CHANGELOG = TopicPartition("jitwatch-grants-changelog", 0)


class _Fetcher:
    def __init__(self, seeks: list[tuple[TopicPartition, int]]) -> None:
        self._seeks = seeks

    def seek_to(self, tp: TopicPartition, offset: int) -> None:
        self._seeks.append((tp, offset))


class _Consumer:
    """What the fix touches of an AIOKafkaConsumer; records each seek as (tp, offset), -1
    for "to the beginning"."""

    def __init__(self) -> None:
        self.seeks: list[tuple[TopicPartition, int]] = []
        self._fetcher = _Fetcher(self.seeks)

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.seeks += [(tp, -1) for tp in tps]


async def test_only_input_partitions_are_seeked(monkeypatch: pytest.MonkeyPatch) -> None:
    committed = {_COMMITTED_AT_ZERO: 0, _NEVER_COMMITTED: None, _COMMITTED: 42,
                 _CHANGELOG: None}

    async def unfixed(self: Any, *partitions: TopicPartition) -> dict[TopicPartition, Any]:
        return committed  # aiokafka itself seeks what it can (offsets above zero)

    monkeypatch.setattr(seek_fix, "_unfixed", unfixed)
    consumer = _Consumer()
    found = await seek_fix._seek_to_committed(consumer)  # type: ignore[arg-type]  # a stand-in
    assert found == committed
    assert consumer.seeks == [(_COMMITTED_AT_ZERO, 0), (_NEVER_COMMITTED, -1)]


def test_install_is_idempotent() -> None:
    seek_fix.install_seek_fix()
    seek_fix.install_seek_fix()
    assert AIOKafkaConsumer.seek_to_committed is seek_fix._seek_to_committed
