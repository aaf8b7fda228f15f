"""faust's own floor: what the worker must do for every event, minus deciding anything.

One agent, the worker's batching, one table write per event (the worker's BatchedTable:
changelog, then RocksDB) and one record produced per event, acks awaited before the table
is written: the worker's shape with the policy taken out. ``bench/e2e.py throughput``
runs it as a second baseline, so the figures tell faust's share from ours. With
``FLOOR_TABLE=0`` it skips the table writes (the third baseline, ``faust_stream``): what
faust's stream and producer alone cost.

Run by e2e.py: FLOOR_SOURCE=... FLOOR_SINK=... FLOOR_APP=... FLOOR_DATA=...
python bench/faust_floor.py
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import EventT

from streams.cli.gc_tuning import tune_gc
from streams.worker.app import STREAM_BUFFER_MAX, quiet_worker
from streams.worker.batching import in_batches
from streams.worker.patches.flow import install_flow_fix
from streams.worker.send import send_all
from streams.worker.table import BatchedTable

install_flow_fix()  # faust as the worker runs it
tune_gc()  # and the process as the worker sets it up

app = faust.App(
    os.environ["FLOOR_APP"],
    broker=f"kafka://{os.environ.get('JITWATCH_KAFKA_BOOTSTRAP', '127.0.0.1:9092')}",
    store="rocksdb://",
    datadir=os.environ["FLOOR_DATA"],
    topic_partitions=8,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    producer_linger_ms=2,
    web_enabled=False,
    key_serializer="raw",
    value_serializer="raw",
    stream_buffer_maxsize=STREAM_BUFFER_MAX,  # as the worker
)
source = app.topic(os.environ["FLOOR_SOURCE"], key_serializer="raw", value_serializer="raw")
table = app.Table("floor", default=None, partitions=8, key_type=bytes, value_type=bytes)
sink = os.environ["FLOOR_SINK"]
store_events = os.environ.get("FLOOR_TABLE", "1") != "0"


async def _handle(events: Sequence[EventT[Any]]) -> None:
    await send_all(app.producer, [(sink, event.message.key, event.message.value, None, None)
                                  for event in events])
    if store_events:
        await BatchedTable(table, app.producer).put_all(
            [(event, event.message.key, event.message.value) for event in events])


@app.agent(source, concurrency=1)
async def floor(stream: Any) -> None:
    """Produce and store every event, in natural batches."""
    await in_batches(stream, _handle, 500)


if __name__ == "__main__":
    quiet_worker(app, "warning").execute_from_commandline()  # as the worker runs
