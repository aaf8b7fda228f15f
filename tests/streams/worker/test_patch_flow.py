"""flow_fix: resuming a running flow keeps what its streams hold; gaps cover only what was
never handed over."""

from __future__ import annotations

import pytest
from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from streams.worker.patches import flow as flow_fix


@pytest.fixture(autouse=True)
def _installed() -> None:
    flow_fix.install_flow_fix()


def _queue_with(flow: FlowControlEvent, *items: str) -> FlowControlQueue[str]:
    queue: FlowControlQueue[str] = FlowControlQueue(maxsize=10, flow_control=flow,
                                                    clear_on_resume=True)
    for item in items:
        queue.put_nowait(item)
    return queue


async def test_resuming_a_running_flow_keeps_what_the_stream_was_handed() -> None:
    # faust resumes the flow once more after recovery's seek; records handed over
    # meanwhile were being thrown away.
    flow = FlowControlEvent()
    flow.resume()
    queue = _queue_with(flow, "handed before the last resume")
    flow.resume()
    assert queue.qsize() == 1
    assert flow.is_active()


async def test_resuming_after_a_suspension_still_clears() -> None:
    flow = FlowControlEvent()
    flow.resume()
    queue = _queue_with(flow, "from before the revocation")
    flow.suspend()
    assert not flow.is_active()
    flow.resume()
    assert queue.qsize() == 0
    assert flow.is_active()


def test_installing_twice_keeps_mode_s_original() -> None:
    original = flow_fix._unfixed["resume"]
    flow_fix.install_flow_fix()
    assert flow_fix._unfixed["resume"] is original
    assert FlowControlEvent.resume is flow_fix._resume


class _Consumer:
    """Stands for faust's consumer: its read offsets, and the gaps it was asked to record."""

    def __init__(self, read_offset: dict[str, int | None]) -> None:
        self._read_offset = read_offset
        self.gaps: list[tuple[str, int, int]] = []


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> _Consumer:
    async def seek_to_committed(self: _Consumer) -> dict[str, int]:
        return {"p0": 100, "p1": 500}  # committed offsets; perform_seek then lowers to them

    async def add_gap(self: _Consumer, tp: str, offset_from: int, offset_to: int) -> None:
        self.gaps.append((tp, offset_from, offset_to))

    monkeypatch.setitem(flow_fix._unfixed, "seek_to_committed", seek_to_committed)
    monkeypatch.setitem(flow_fix._unfixed, "add_gap", add_gap)
    return _Consumer({"p0": 140, "p1": None})


async def test_a_gap_never_covers_the_record_being_handed_over(consumer: _Consumer) -> None:
    await Consumer._add_gap(consumer, "p0", 141, 145)  # type: ignore[arg-type]
    assert consumer.gaps == [("p0", 141, 144)]


async def test_a_seek_back_does_not_turn_records_handed_over_into_a_gap(
        consumer: _Consumer) -> None:
    # 100..140 were handed over when the seek set the read offset back to 100; the rest of
    # that fetched batch (141 on) now looks like a jump from 100.
    await ThreadDelegateConsumer.seek_to_committed(consumer)  # type: ignore[arg-type]
    await Consumer._add_gap(consumer, "p0", 101, 141)  # type: ignore[arg-type]
    assert consumer.gaps == []
    # A real gap after them (transaction markers) is still recorded.
    await Consumer._add_gap(consumer, "p0", 150, 153)  # type: ignore[arg-type]
    assert consumer.gaps == [("p0", 150, 152)]


async def test_a_partition_with_nothing_handed_over_keeps_its_gaps(
        consumer: _Consumer) -> None:
    await ThreadDelegateConsumer.seek_to_committed(consumer)  # type: ignore[arg-type]
    await Consumer._add_gap(consumer, "p1", 501, 510)  # type: ignore[arg-type]
    assert consumer.gaps == [("p1", 501, 509)]


async def test_an_assignment_forgets_what_was_recorded_since_the_revocation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The fetch loop recorded 8,449 as read after the revocation had forgotten the
    # partition; kept, it would drop 8,298..8,448 when the partition comes back.
    seen: list[dict[str, int]] = []

    async def on_partitions_assigned(self: _Consumer, assigned: set[str],
                                     generation_id: int) -> None:
        seen.append(dict(self._read_offset))  # type: ignore[arg-type]

    monkeypatch.setitem(flow_fix._unfixed, "on_partitions_assigned", on_partitions_assigned)
    consumer = _Consumer({"p0": 8449, "other": 7})
    names = ("_acked", "_acked_index", "_gap", "_committed_offset", flow_fix._HANDED_OVER)
    for name in names:
        setattr(consumer, name, {"p0": object(), "other": object()})
    await Consumer.on_partitions_assigned(consumer, {"p0"}, 5)  # type: ignore[arg-type]
    assert seen == [{"other": 7}]
    for name in names:
        assert set(getattr(consumer, name)) == {"other"}
