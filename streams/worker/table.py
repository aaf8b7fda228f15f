"""The worker's table of per-subject state: read on the owning event's partition, written a
batch at a time (changelog first, acknowledged, then the local store)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

from faust.streams import _current_event  # see BatchedTable
from faust.types import TP, EventT
from rocksdict import WriteBatch

from streams.worker.send import send_all

__all__ = ["BatchedTable"]


class BatchedTable:
    """Reads a faust table on the owning event's partition; writes a batch in one go.

    faust takes a write's changelog partition (and its RocksDB shard) from the *current*
    event, which in a batch is not the event the value belongs to. We point the current
    event at the owning one first. Only the context variable of the agent's own task is
    set: the stream's ``current_event`` attribute is what the batching task reads to buffer
    the next event, so touching it would swap events in the buffer.

    A write through ``table[key] = value`` queues one changelog record in faust's producer
    buffer, sent one at a time, and stores the persisted offset in RocksDB once per record:
    that path made faust's floor four times slower than its bare stream. :meth:`put_all`
    does the same work per batch: the changelog records of the whole batch are sent
    together and acknowledged, then stored in RocksDB (so the local store is never ahead
    of its changelog), then each partition's persisted offset is written once.

    On a RocksDB store both paths go to the partition's database directly: a read through
    the table passes the key and the value through faust's serializer registry and reads
    twice (contains, then get), and a write is one RocksDB put per key. Here a read is one
    get, and a batch's values and persisted offset for one partition are one WriteBatch,
    so they land together or not at all (faust's own changelog recovery writes the same
    way). Other stores (memory) take the table's path.
    """

    def __init__(self, table: Any, producer: Any) -> None:
        self._table = table
        self._producer = producer
        store = table.data
        # A faust RocksDB store opens (or returns) a partition's database with this; the
        # offset key is where it keeps a partition's persisted changelog offset.
        self._partition_db: Callable[[int], Any] | None = getattr(
            store, "_db_for_partition", None)
        self._offset_key: bytes | None = getattr(store, "offset_key", None)

    def get(self, event: EventT[Any], key: bytes) -> bytes | None:
        """The stored value of ``key`` on ``event``'s partition."""
        if self._partition_db is not None:
            value = self._partition_db(event.message.partition).get(key)
        else:
            _current_event.set(weakref.ref(event))
            value = self._table.get(key)
        return value if value is None else bytes(value)

    async def put_all(self, writes: Sequence[tuple[EventT[Any], bytes, bytes | None]]) -> None:
        """Store each (event, key, value): changelog first, acknowledged, then RocksDB. A
        value None deletes the key: a tombstone in the (compacted) changelog, which faust's
        recovery applies as a delete too."""
        if not writes:
            return
        topic = self._table.changelog_topic.get_topic_name()
        sent = await send_all(self._producer, [(topic, key, value, event.message.partition, None)
                                               for event, key, value in writes])
        # Each partition's persisted offset: the highest acknowledged there.
        persisted: dict[int, int] = {}
        for metadata in sent:
            persisted[metadata.partition] = max(metadata.offset,
                                                persisted.get(metadata.partition, -1))
        partition_db, offset_key = self._partition_db, self._offset_key
        if partition_db is not None and offset_key is not None:
            _write_batches(partition_db, offset_key, writes, persisted)
            return
        store = self._table.data
        for event, key, value in writes:
            _current_event.set(weakref.ref(event))
            # Assign a new value; stored values are never mutated in place. The store
            # alone: its changelog record is already written above.
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
        for partition, offset in persisted.items():
            store.set_persisted_offset(TP(topic, partition), offset)


def _write_batches(partition_db: Callable[[int], Any], offset_key: bytes,
                   writes: Sequence[tuple[EventT[Any], bytes, bytes | None]],
                   persisted: dict[int, int]) -> None:
    # One WriteBatch per partition: its values and its persisted offset land together.
    batches: dict[int, WriteBatch] = {}
    for event, key, value in writes:
        partition = event.message.partition
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = WriteBatch(raw_mode=True)
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)  # a new value; stored values are never mutated in place
    for partition, batch in batches.items():
        batch.put(offset_key, str(persisted[partition]).encode())
        partition_db(partition).write(batch)
