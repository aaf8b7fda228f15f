"""The worker's batch handler with the cross-topic hold, on the flake's own sequence
(tests/integration/test_equivalence.py under load): a grant's request is fetched but still
buffered when its ``task.completed`` reaches the agent from the sessions topic. Before the
hold, the completion was decided first, ended nothing, and the grant lived until its TTL;
``simulate`` (broker-time order) revokes it at once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from types import SimpleNamespace
from typing import Any

import orjson

from schemas.policy import parse_policy
from streams.engine.deadlines import DeadlineIndex, PartitionClock
from streams.engine.partitioner import partition_of
from streams.engine.plan import LOG_APPEND_TIME
from streams.settings import TopicSettings
from streams.worker.app import _handle_batch
from tests.factories import raw_event, raw_request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
TOPICS = TopicSettings()
SUBJECT = "dev@example.com"
PARTITION = partition_of(SUBJECT.encode(), TOPICS.topic_partitions)


def _event(topic: str, offset: int, raw: dict[str, Any], stamp: float) -> Any:
    raw = {**raw, "at": datetime.fromtimestamp(stamp, UTC).isoformat()}
    message = SimpleNamespace(topic=topic, partition=PARTITION, offset=offset,
                              key=SUBJECT.encode(), value=orjson.dumps(raw),
                              timestamp=stamp, timestamp_type=LOG_APPEND_TIME, headers=[])
    return SimpleNamespace(message=message)


class _Access:
    def __init__(self) -> None:
        self.stored: dict[bytes, bytes | None] = {}

    def get(self, event: Any, key: bytes) -> bytes | None:
        return self.stored.get(key)

    async def put_all(self, writes: Sequence[Any]) -> None:
        self.stored.update((key, value) for _, key, value in writes)


async def test_a_completion_waits_for_its_grants_request_fetched_but_not_handed_over(
        ) -> None:
    now = time.time()
    request = _event(TOPICS.topic_requests, 5, raw_request(
        "r-1", [("db/orders", "dev")], subject=SUBJECT, ttl_s=60), now - 0.3)
    completed = _event(TOPICS.topic_sessions, 2, raw_event(
        "task.completed", subject=SUBJECT, event_id="e-done", request_id="r-1"), now - 0.2)
    sent: list[tuple[str, str]] = []

    async def send(plan: Any) -> list[Any]:
        for out in plan.outbound:
            decision = orjson.loads(out.value)
            sent.append((decision["action"], decision["rule"]["id"]))
        return [SimpleNamespace(partition=PARTITION, offset=n) for n in range(len(sent))]

    # The consumer's view: the requests partition's last fetch reported end offset 6 after
    # the completion was appended, but offset 5 is still in the consumer's buffer.
    ends = {(TOPICS.topic_requests, PARTITION): 6, (TOPICS.topic_sessions, PARTITION): 3}
    reported = {where: datetime.fromtimestamp(now, UTC) for where in ends}
    committed = {(TOPICS.topic_requests, PARTITION): 5,
                 (TOPICS.topic_sessions, PARTITION): 2}
    access, clock = _Access(), PartitionClock()

    async def handle(batch: Sequence[Any]) -> list[Any]:
        return await _handle_batch(
            batch, access=access, send=send, topics=TOPICS,  # type: ignore[arg-type]
            max_event_bytes=65536, max_stored_bytes=1 << 20, policy=POLICY,
            deadlines=DeadlineIndex(), clock=clock,
            max_record_bytes=1_000_000, view=lambda owned: (ends, committed, reported))

    assert await handle([completed]) == [completed]
    assert sent == []  # nothing decided: the completion waits
    assert await handle([completed, request]) == []
    assert sent == [("approve", "auto-approve"), ("revoke", "task-completed")]
