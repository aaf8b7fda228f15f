"""The consumer group's progress on every input partition, read from the broker for the
expiry gate across workers (issue I, :meth:`PartitionClock.may_expire_group`).

faust's consumer knows only the partitions this worker owns. A misplaced record of a
subject owned here may wait on a partition another worker owns until that worker forwards
it; what this worker can see of that is the group's committed offsets (a worker commits
past a record only after its forward was acknowledged) and the partitions' end offsets.
Both are read here, once per timer pass, through clients of their own: a consumer in no
group (end offsets) and an admin client (the group's committed offsets). The rule that
reads them is pure (:class:`streams.engine.deadlines.GroupProgress`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.engine.deadlines import GroupProgress
from streams.kafka.security import kafka_client_options
from streams.settings import KafkaSettings

__all__ = ["GroupView"]

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0
"""How long one reading may take; a broker that does not answer holds the pass's ticks."""


class GroupView:
    """Reads end offsets and the group's committed offsets of ``topics`` (every partition
    up to ``partitions``) into a :class:`GroupProgress`."""

    def __init__(self, kafka: KafkaSettings, group: str, topics: Sequence[str],
                 partitions: int) -> None:
        self._kafka = kafka
        self._group = group
        self._tps = [TopicPartition(topic, number) for topic in topics
                     for number in range(partitions)]
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._coordinator: int | None = None

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            options = kafka_client_options(self._kafka)
            consumer = AIOKafkaConsumer(bootstrap_servers=self._kafka.kafka_bootstrap,
                                        enable_auto_commit=False, **options)
            admin = AIOKafkaAdminClient(bootstrap_servers=self._kafka.kafka_bootstrap,
                                        **options)
            try:
                await consumer.start()
                await admin.start()
            except BaseException:
                await consumer.stop()
                await admin.close()
                raise
            self._consumer, self._admin = consumer, admin
        return self._consumer, self._admin

    async def observe(self, progress: GroupProgress) -> None:
        """Read the end offsets, then the committed offsets, into ``progress``.

        Raises:
            Exception: whatever the clients raise (a broker restarting), or a timeout;
                the caller holds its ticks for this pass.
        """
        await asyncio.wait_for(self._observe(progress), READ_TIMEOUT_S)

    async def _observe(self, progress: GroupProgress) -> None:
        consumer, admin = await self._clients()
        # Asked at this moment, the end offsets cover every record appended before it.
        ends_at = datetime.now(UTC)
        ends = await consumer.end_offsets(self._tps)
        try:
            if self._coordinator is None:
                self._coordinator = await admin.find_coordinator(self._group)
            committed = await admin.list_consumer_group_offsets(
                self._group, self._coordinator, partitions=self._tps)
        except Exception:
            self._coordinator = None  # it may have moved: look it up again next time
            raise
        # Answered by this moment, the commits were made before it, and with them the
        # forwards acknowledged before each commit.
        committed_at = datetime.now(UTC)
        progress.observe(
            ends_at, {(tp.topic, tp.partition): end for tp, end in ends.items()},
            committed_at, {(tp.topic, tp.partition): (None if meta.offset < 0 else meta.offset)
                           for tp, meta in committed.items()})

    async def close(self) -> None:
        """Stop the clients, if started."""
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._consumer = self._admin = None
