"""BatchedTable: a batch's state reaches the changelog, acknowledged, before RocksDB.

The order matters for at least once: inputs are acknowledged after ``put_all`` returns,
so a state change must be in Kafka by then, or a kill -9 loses it while its input counts
as done (faust's own path could, see README "Known problems").
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from faust.streams import _current_event, current_event
from faust.types import TP

from streams.worker.table import BatchedTable


@dataclass
class _Message:
    partition: int


@dataclass
class _Event:
    message: _Message


@dataclass
class _Sent:
    partition: int
    offset: int


@dataclass
class _Store:
    values: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    persisted: dict[TP, int] = field(default_factory=dict)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        event = current_event()
        assert event is not None, "a store write needs the owning event as current"
        self.values[key] = (event.message.partition, value)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.persisted[tp] = offset


class _Topic:
    def get_topic_name(self) -> str:
        return "app-grants-changelog"


@dataclass
class _Table:
    data: _Store = field(default_factory=_Store)
    changelog_topic: _Topic = field(default_factory=_Topic)


class _Producer:
    """Records sends; their acknowledgements wait until ``ack`` is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, int]] = []
        self.ack = asyncio.Event()

    async def send(self, topic: str, key: bytes, value: bytes, *, partition: int,
                   **_: Any) -> asyncio.Future[_Sent]:
        offset = len(self.sent)
        self.sent.append((topic, key, value, partition))
        future: asyncio.Future[_Sent] = asyncio.get_running_loop().create_future()

        async def acknowledge() -> None:
            await self.ack.wait()
            future.set_result(_Sent(partition, offset))

        asyncio.get_running_loop().create_task(acknowledge())
        return future


async def test_changelog_acknowledged_before_the_store_is_written() -> None:
    table, producer = _Table(), _Producer()
    writes = [(_Event(_Message(3)), b"alice", b"v1"), (_Event(_Message(5)), b"bob", b"v2"),
              (_Event(_Message(3)), b"carol", b"v3")]
    storing = asyncio.ensure_future(BatchedTable(table, producer).put_all(writes))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    # Every record of the batch is on its way, on its event's partition; nothing stored.
    assert [(key, partition) for _, key, _, partition in producer.sent] == [
        (b"alice", 3), (b"bob", 5), (b"carol", 3)]
    assert not storing.done()
    assert table.data.values == {}
    producer.ack.set()
    await storing
    assert table.data.values == {b"alice": (3, b"v1"), b"bob": (5, b"v2"),
                                 b"carol": (3, b"v3")}
    # One persisted offset per partition: the highest acknowledged there.
    assert table.data.persisted == {TP("app-grants-changelog", 3): 2,
                                    TP("app-grants-changelog", 5): 1}


async def test_an_empty_batch_sends_nothing() -> None:
    table, producer = _Table(), _Producer()
    await BatchedTable(table, producer).put_all([])
    assert producer.sent == []


async def test_a_rocksdb_store_gets_one_write_batch_per_partition(tmp_path: Path) -> None:
    # faust's real RocksDB store (no broker needed): values land in the owning event's
    # partition database together with that partition's persisted offset, and reads find
    # them there; faust's own accessors agree.
    app = faust.App("batched-table-test", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("grants", default=None, partitions=8, key_type=bytes, value_type=bytes)
    producer = _Producer()
    producer.ack.set()
    access = BatchedTable(table, producer)
    writes = [(_Event(_Message(3)), b"alice", b"v1"), (_Event(_Message(5)), b"bob", b"v2"),
              (_Event(_Message(3)), b"alice", b"v3")]
    await access.put_all(writes)  # type: ignore[arg-type]
    store = table.data
    changelog = table.changelog_topic.get_topic_name()
    assert store.persisted_offset(TP(changelog, 3)) == 2
    assert store.persisted_offset(TP(changelog, 5)) == 1
    assert access.get(_Event(_Message(3)), b"alice") == b"v3"  # type: ignore[arg-type]
    assert access.get(_Event(_Message(5)), b"bob") == b"v2"  # type: ignore[arg-type]
    assert access.get(_Event(_Message(5)), b"alice") is None  # type: ignore[arg-type]
    on_partition_3 = _Event(_Message(3))
    _current_event.set(weakref.ref(on_partition_3))  # type: ignore[arg-type]
    assert table.get(b"alice") == b"v3"


async def test_a_value_none_deletes_the_key(tmp_path: Path) -> None:
    # Issue H: a subject with no tenant state left is deleted: a tombstone in the
    # changelog, and gone from the partition's RocksDB.
    app = faust.App("batched-table-delete", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("grants", default=None, partitions=8, key_type=bytes, value_type=bytes)
    producer = _Producer()
    producer.ack.set()
    access = BatchedTable(table, producer)
    on_3 = _Event(_Message(3))
    await access.put_all([(on_3, b"alice", b"v1")])  # type: ignore[list-item]
    await access.put_all([(on_3, b"alice", None)])  # type: ignore[list-item]
    assert producer.sent[-1][2] is None
    assert access.get(on_3, b"alice") is None  # type: ignore[arg-type]
