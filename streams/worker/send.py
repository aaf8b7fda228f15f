"""Send a batch's records through the worker's producer and await every acknowledgement.

Two ways, one contract (:func:`send_all`): through faust's producer one record at a time
(the default), or, with the batch hand-off of issue M on, through :class:`BatchProducer`:
one aiokafka batch per topic-partition, built here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata

from streams.engine.partitioner import partition_of
from streams.engine.records import Outbound, Record

__all__ = ["BatchProducer", "Outgoing", "RecordNotSent", "send_all", "unsent"]

Outgoing = tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]
"""(topic, key, value, partition or None for the key's, headers or None)."""

_Placed = tuple[int, Any]
"""A record's index in the input and what its batch's ``append`` returned (its offset
within the batch and its create time)."""


class RecordNotSent(Exception):  # noqa: N818 - says what happened, as aiokafka's do
    """The producer raised while record ``index`` of a :func:`send_all` call was handed to
    it (a record it refuses: no key and no value, over ``max_request_size``; or a wait for
    the topic's metadata that timed out); the cause is chained."""

    def __init__(self, index: int, cause: BaseException) -> None:
        super().__init__(f"record {index} not sent: {type(cause).__name__}: {cause}")
        self.index = index


def unsent(exc: BaseException, records: Sequence[Record], outbound: Sequence[Outbound]
           ) -> str:
    """What a batch whose :func:`send_all` raised ``exc`` was: the input record whose
    outbound record was refused (for :class:`RecordNotSent`), and every input's coordinates
    (topic[partition]@first..last), for the log: a failed batch is neither stored nor
    acknowledged, so its partitions' committed offsets stay below it."""
    spans: dict[tuple[str, int], list[int]] = {}
    for record in records:
        span = spans.setdefault((record.topic, record.partition), [record.offset] * 2)
        span[0], span[1] = min(span[0], record.offset), max(span[1], record.offset)
    inputs = ", ".join(f"{topic}[{partition}]@{first}..{last}"
                       for (topic, partition), (first, last) in spans.items())
    culprit = ""
    if isinstance(exc, RecordNotSent) and exc.index < len(outbound):
        out = outbound[exc.index]
        source = records[out.source]
        culprit = (f"{out.topic} record (key {len(out.key or b'')} bytes, value "
                   f"{'null' if out.value is None else len(out.value)} bytes) for input "
                   f"{source.topic}[{source.partition}]@{source.offset} refused; ")
    return (f"{culprit}batch not sent ({type(exc).__name__}: {exc}), so neither stored nor "
            f"acknowledged: inputs {inputs}")


async def send_all(producer: Any, records: Sequence[Outgoing]) -> list[Any]:
    """Send every record, then await all acknowledgements; returns their metadata
    (``.topic``, ``.partition``, ``.offset``), in the order of ``records``.

    Every record is handed to the producer before any acknowledgement is awaited, so a
    batch's records go out together in as few requests as the producer can make. Records
    of one topic-partition are written in the order given. Any failure raises (nothing
    sent may then count as acknowledged); a failure while a record is handed over raises
    :class:`RecordNotSent` naming it.
    """
    if isinstance(producer, BatchProducer):
        return await producer.send_all(records)
    futures = []
    for index, (topic, key, value, partition, headers) in enumerate(records):
        try:
            futures.append(await producer.send(topic, key, value, partition=partition,
                                               timestamp=None, headers=headers or None))
        except Exception as exc:
            raise RecordNotSent(index, exc) from exc
    return list(await asyncio.gather(*futures))


class BatchProducer:
    """faust's producer, with :func:`send_all` building one aiokafka batch per
    topic-partition instead of one ``send`` per record (issue M).

    faust's ``send`` goes through aiokafka's ``send`` for each record: metadata wait,
    serializer, pure-Python murmur2 of the key, the accumulator's append, and a future per
    record; about 15 µs per record in issue 24's profile. Here each record is appended to
    its topic-partition's batch (``create_batch``/``append``, aiokafka's C builder), a batch
    is queued with ``send_batch``, and a record's offset is its batch's acknowledged base
    offset plus its offset within the batch, which is how aiokafka resolves a record's own
    future too.

    Where records go is what aiokafka's ``send`` would choose: an explicit partition is
    kept; a key is placed by Kafka's default partitioner, computed once per key
    (:func:`~streams.engine.partitioner.partition_of` remembers recent keys); a record
    without a key (a dead letter of a keyless input) asks aiokafka's partitioner, which
    picks an available partition at random, as it does today. A producer configured with
    another partitioner is asked for every record.

    Other users of faust's producer (the expiry timer's ticks) still call it directly;
    their records join aiokafka's own batches, which a batch of ours waits behind
    (``send_batch`` queues behind a topic-partition's pending batch), so order per
    partition holds for each sender. faust's ``on_produce_message`` signal is not sent for
    these records: nothing here listens to it (faust's livecheck does).
    """

    __slots__ = ("_faust",)

    def __init__(self, producer: Any) -> None:
        self._faust = producer

    def _aiokafka(self) -> Any:
        # faust's aiokafka Producer keeps its started AIOKafkaProducer here (None when
        # stopped: raise as faust's own send does).
        producer = getattr(self._faust, "_producer", None)
        if producer is None:
            raise RuntimeError("faust's producer is not started")
        return producer

    async def send_all(self, records: Sequence[Outgoing]) -> list[Any]:
        """:func:`send_all` by batches; see the class."""
        aio = self._aiokafka()
        built = [(topic, partition, _batches(aio, records, indices))
                 for (topic, partition), indices in (await _grouped(aio, records)).items()]
        # Queued a round at a time (every partition's first batch, then every second one):
        # aiokafka queues a partition's next batch only once its sender took the last, and
        # its sender takes at most one batch per partition into a request, so a round's
        # batches travel together. Partition by partition, a partition's later batches
        # would each wait for a request of their own (measured: twice the requests).
        queued: list[tuple[asyncio.Future[Any], list[_Placed]]] = []
        for round_ in range(max(len(batches) for _, _, batches in built) if built else 0):
            for topic, partition, batches in built:
                if round_ < len(batches):
                    batch, placed = batches[round_]
                    queued.append((await aio.send_batch(batch, topic, partition=partition),
                                   placed))
        # Every batch's outcome is read, so a second failure is not logged as unretrieved.
        outcomes = await asyncio.gather(*(future for future, _ in queued),
                                        return_exceptions=True)
        results: list[Any] = [None] * len(records)
        for outcome, (_, placed) in zip(outcomes, queued, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            _resolve(outcome, placed, results)
        return results


def _batches(aio: Any, records: Sequence[Outgoing],
             indices: list[int]) -> list[tuple[Any, list[_Placed]]]:
    # One topic-partition's records appended in order; a batch that fills is closed and
    # the next started. Each batch is closed, so nothing else (the expiry timer's sends)
    # joins a batch whose offsets are counted here.
    batch = aio.create_batch()
    placed: list[_Placed] = []
    batches = [(batch, placed)]
    for index in indices:
        _, key, value, _, headers = records[index]
        try:
            if key is None and value is None:  # refused as aiokafka's send refuses it
                raise AssertionError("Need at least one: key or value")
            aio._serialize(key, value, headers or [])  # noqa: SLF001 - send()'s size check
        except Exception as exc:
            raise RecordNotSent(index, exc) from exc
        while (appended := batch.append(key=key, value=value, timestamp=None,
                                        headers=headers or [])) is None:
            if not placed:  # an empty batch takes any record: never here
                raise RuntimeError("aiokafka refused a record in an empty batch")
            batch, placed = aio.create_batch(), []
            batches.append((batch, placed))
        placed.append((index, appended))
    batch.close()
    return batches


async def _grouped(aio: Any, records: Sequence[Outgoing]) -> dict[tuple[str, int], list[int]]:
    # Each record's topic-partition, in first-seen order, with its records in input order.
    murmur = isinstance(aio._partitioner, DefaultPartitioner)  # noqa: SLF001 - as send()
    counts: dict[str, int] = {}
    groups: dict[tuple[str, int], list[int]] = {}
    for index, (topic, key, value, partition, _) in enumerate(records):
        if partition is None:
            count = counts.get(topic)
            if count is None:  # aiokafka's send waits for the topic's metadata as well
                count = counts[topic] = len(await aio.partitions_for(topic))
            if murmur and key is not None:
                partition = partition_of(key, count)
            else:  # aiokafka's own choice: at random for no key, or another partitioner's
                partition = aio._partition(  # noqa: SLF001 - what send() calls
                    topic, None, key, value, key, value)
        group = groups.get((topic, partition))
        if group is None:
            groups[(topic, partition)] = [index]
        else:
            group.append(index)
    return groups


def _resolve(batch: Any, placed: list[_Placed], results: list[Any]) -> None:
    # A record's metadata as aiokafka's MessageBatch.done gives it: base offset plus the
    # record's offset in the batch; the broker's time (LogAppendTime) or, when it answers
    # -1 (CreateTime), the record's own. acks=0 answers no metadata at all (None).
    if batch is None:
        return
    base, stamp = batch.offset, batch.timestamp
    for index, appended in placed:
        results[index] = RecordMetadata(batch.topic, batch.partition, batch.topic_partition,
                                        base + appended.offset,
                                        appended.timestamp if stamp == -1 else stamp,
                                        batch.timestamp_type, batch.log_start_offset)
