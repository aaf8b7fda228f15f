"""A fix for aiokafka's ``seek_to_committed``, which faust calls after every recovery.

aiokafka (0.14) seeks only partitions whose committed offset is above zero
(``if offset and offset > 0``, aio-libs/aiokafka#1003): a partition committed at 0, or never
committed, keeps whatever position its fetcher reached. faust drops records it was handing
to a stream when recovery suspended the flow, and after recovery relies on this seek to read
them again. Without it those records are skipped: no verdict for them, and, because faust
commits only up to the first unacknowledged offset, the partition's offsets never move
again (the stall seen after a cold recovery and in the kill -9 fault scenario).

The worker reads its inputs from the earliest offset (``consumer_auto_offset_reset``), so a
partition never committed starts from its beginning, as on a first start.

Changelog partitions are left alone. faust never commits them (a table's position is the
offset persisted with its store), so to the fix they look never committed, and seeking them
to their beginning made every standby replica read its whole changelog again after each
rebalance. faust's recovery places them itself; they keep the position it gave them, as
aiokafka does on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["install_seek_fix"]

CHANGELOG_SUFFIX = "-changelog"
"""How faust names a table's changelog topic (``<app id>-<table>-changelog``)."""

_Seek = Callable[..., Awaitable[Mapping[TopicPartition, int | None]]]
_unfixed: _Seek | None = None


async def _seek_to_committed(
    self: AIOKafkaConsumer, *partitions: TopicPartition
) -> Mapping[TopicPartition, int | None]:
    assert _unfixed is not None
    committed = await _unfixed(self, *partitions)
    for tp, offset in committed.items():
        if tp.topic.endswith(CHANGELOG_SUFFIX):
            continue  # placed by faust's recovery, never committed: see above
        if offset == 0:
            self._fetcher.seek_to(tp, 0)  # what aiokafka itself does for offsets > 0
        elif offset is None or offset < 0:
            await self.seek_to_beginning(tp)
    return committed


def install_seek_fix() -> None:
    """Make ``AIOKafkaConsumer.seek_to_committed`` seek every partition (idempotent)."""
    global _unfixed
    if _unfixed is None:
        _unfixed = AIOKafkaConsumer.seek_to_committed
        AIOKafkaConsumer.seek_to_committed = _seek_to_committed
