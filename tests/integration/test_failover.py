"""Two workers share the partitions; one is killed with -9 mid-stream; the survivor takes
its partitions, recovers their tables from the changelog and goes on. Afterwards the
decisions, deduplicated by id, equal simulate's (issue C). With faust's per-record hand-off
and with the batch hand-off of issue M (``handoff``: both workers get the setting); the
survivor holds standby replicas of the killed worker's tables (``standby_replicas`` 1), so
this is also issue M's standby recovery with the flag on.

The scenario keeps to one input topic: after a takeover the backlog of each topic is
fetched on its own, and events of different topics in different batches are decided in
arrival order (see README, "Ordering").
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import Producer, Stack, handoff_env
from tests.integration.test_equivalence import (
    assert_stream_equals_simulate,
    publish_paced,
    scenario,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


async def test_kill_9_one_of_two_workers(stack: Stack, producer: Producer, logs: Any,
                                         tmp_path: Any, handoff: bool) -> None:
    second = stack.start("worker", logs, JITWATCH_DATA_DIR=str(tmp_path / "second"),
                         **handoff_env(handoff))
    await asyncio.sleep(8)  # let the group rebalance onto both workers
    assert second.poll() is None, "second worker exited"

    tag = uuid.uuid4().hex[:6]
    start = datetime.now(UTC) + timedelta(seconds=1)
    events = scenario(start, tag, seed=23, sessions=False)
    publisher = asyncio.create_task(publish_paced(producer, stack, events))
    await asyncio.sleep(5)
    second.send_signal(signal.SIGKILL)  # no goodbye: the group notices by session timeout
    second.wait(timeout=10)
    received = await publisher

    until = start + timedelta(seconds=12 + 4 + 1)
    # Session timeout (10 s), rebalance, recovery from the changelog, backlog, ticks.
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 20)
    await assert_stream_equals_simulate(stack, events, tag, until, received)
