"""flow_fix: resuming a running flow keeps what its streams hold."""

from __future__ import annotations

import pytest
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from streams import flow_fix


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
