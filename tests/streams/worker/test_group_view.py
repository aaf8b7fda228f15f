"""The worker's reading of the group's progress for the expiry gate (issue I), with fake
clients: end offsets asked first, committed offsets answered after, one call of each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.engine.deadlines import GroupProgress
from streams.settings import KafkaSettings
from streams.worker.group_view import GroupView


class _Consumer:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.calls.append(f"end_offsets {len(tps)}")
        return {tp: 4 for tp in tps}


class _Admin:
    def __init__(self, calls: list[str], fail: bool = False) -> None:
        self.calls, self.fail = calls, fail

    async def find_coordinator(self, group: str) -> int:
        self.calls.append(f"find_coordinator {group}")
        return 1

    async def list_consumer_group_offsets(self, group: str, coordinator: int,
                                          partitions: list[TopicPartition]
                                          ) -> dict[TopicPartition, OffsetAndMetadata]:
        self.calls.append(f"committed {group} {coordinator} {len(partitions)}")
        if self.fail:
            raise ConnectionError("coordinator moved")
        return {tp: OffsetAndMetadata(-1 if tp.partition else 4, "") for tp in partitions}


async def test_one_reading_per_pass_into_the_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    view = GroupView(KafkaSettings(), "jitwatch", ("req", "ses"), 2)
    admin = _Admin(calls)

    async def clients() -> tuple[Any, Any]:
        return _Consumer(calls), admin

    monkeypatch.setattr(view, "_clients", clients)
    progress = GroupProgress()
    before = datetime.now(UTC)
    await view.observe(progress)
    assert calls == ["end_offsets 4", "find_coordinator jitwatch", "committed jitwatch 1 4"]
    everywhere = frozenset({("req", 0), ("ses", 0)})
    seen = progress.forwarded_by(before, everywhere)
    assert seen is not None, "partition 0 committed to its end offset, asked after before"
    assert seen >= before
    assert progress.forwarded_by(before, frozenset({("req", 1)})) is None, \
        "-1 is nothing committed"
    await view.observe(progress)
    assert calls[-2:] == ["end_offsets 4", "committed jitwatch 1 4"], "coordinator kept"
    admin.fail = True
    with pytest.raises(ConnectionError):
        await view.observe(progress)
    admin.fail = False
    await view.observe(progress)
    assert calls[-2:] == ["find_coordinator jitwatch", "committed jitwatch 1 4"], \
        "looked up again after a failure"
