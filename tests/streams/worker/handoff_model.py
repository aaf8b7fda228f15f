"""A model of faust's consumer around the batch hand-off, for issue M's gate tests.

The hand-off's fetch loop (``_drain_messages``) and agent loop (``BatchHandoff.run``) run
as they do in the worker, on faust's own bookkeeping (``getmany``, ``ack``, ``_add_gap``,
``_new_offset``, ``perform_seek``, ``wait_empty``, with :mod:`streams.worker.patches.flow`'s
fixes); only the broker (a log per partition, a fetch position, committed offsets), the
fetches (the test hands each one over) and the rebalance listener (what faust's
``on_partitions_revoked`` and recovery do, step by step) stand in. Every commit is checked:
it must never pass a record that was not decided.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP
from faust.types.tuples import Message
from intervaltree import IntervalTree
from mode.utils.queues import FlowControlEvent

from streams.worker.patches import flow as flow_fix
from streams.worker.patches import handoff as handoff_patch
from streams.worker.patches.handoff import BatchHandoff, Held

__all__ = ["TOPIC", "Model"]

flow_fix.install_flow_fix()  # before the stand-in below takes faust's (fixed) methods

TOPIC = "jit.requests"


class _Log:
    def dev(self, *args: Any, **kwargs: Any) -> None: ...
    debug = info = warning = dev


class _Diag:
    def set_flag(self, flag: str) -> None: ...
    unset_flag = set_flag


class _Topics:
    def acks_enabled_for(self, topic: str) -> bool:
        return True


class _Monitor:
    def track_tp_end_offset(self, tp: TP, offset: int) -> None: ...


class _Stopped:
    def __init__(self) -> None:
        self.stopped = False

    def is_set(self) -> bool:
        return self.stopped


class _Fetcher:
    def __init__(self) -> None:
        self._stopped = _Stopped()


class _Broker:
    """The partitions' logs (offsets that hold a record; others are control records),
    the fetch position and the group's committed offsets."""

    def __init__(self, logs: dict[TP, list[int]]) -> None:
        self.logs = logs
        self.ends: dict[TP, int] = {}
        """End offsets past the last record (trailing control records)."""
        self.position: dict[TP, int] = dict.fromkeys(logs, 0)
        self.committed: dict[TP, int] = {}

    def fetch(self, tp: TP, count: int) -> list[int]:
        """The next ``count`` records from the position; the position moves past them
        and past the control records after them, as aiokafka's does."""
        ahead = [offset for offset in self.logs[tp] if offset >= self.position[tp]]
        offsets = ahead[:count]
        self.position[tp] = ahead[count] if len(ahead) > count else self.end(tp)
        return offsets

    def end(self, tp: TP) -> int:
        """The end offset (control records included)."""
        return self.ends.get(tp, max(self.logs[tp], default=-1) + 1)


class _Thread:
    """faust's consumer thread as ``seek_to_committed`` uses it (with the seek fix:
    never committed goes to the beginning)."""

    def __init__(self, broker: _Broker, assignment: set[TP]) -> None:
        self._broker = broker
        self._assignment = assignment

    async def seek_to_committed(self) -> dict[TP, int | None]:
        found: dict[TP, int | None] = {}
        for tp in self._assignment:
            found[tp] = self._broker.committed.get(tp)
            self._broker.position[tp] = found[tp] or 0
        return found


class _App:
    def __init__(self) -> None:
        self.consumer_generation_id = 0
        self.flow_control = FlowControlEvent()  # suspended until the first recovery
        self.topics = _Topics()
        self.monitor = _Monitor()
        self.client_only = False
        self.consumer: Any = None
        self.should_stop = False


class _Transport:
    def __init__(self, app: _App) -> None:
        self.app = app


class _Consumer:
    """faust's consumer: its bookkeeping and methods are faust's own (with the flow fix);
    the fetch, the commit and the thread stand in."""

    getmany = Consumer.getmany
    ack = Consumer.ack
    track_message = Consumer.track_message
    wait_empty = Consumer.wait_empty
    _wait_for_ack = Consumer._wait_for_ack
    _clean_unacked_messages = Consumer._clean_unacked_messages
    _new_offset = Consumer._new_offset
    _should_commit = Consumer._should_commit
    _filter_committable_offsets = Consumer._filter_committable_offsets
    _add_gap = Consumer._add_gap
    perform_seek = Consumer.perform_seek
    seek_to_committed = ThreadDelegateConsumer.seek_to_committed
    stop_flow = Consumer.stop_flow
    resume_flow = Consumer.resume_flow

    def __init__(self, app: _App, broker: _Broker) -> None:
        self.app = app
        self.transport = _Transport(app)
        self.log = _Log()
        self.diag = _Diag()
        self.loop = asyncio.get_running_loop()
        self.scheduler = DefaultSchedulingStrategy()
        self._broker = broker
        self._assignment: set[TP] = set()
        self._thread = _Thread(broker, self._assignment)
        self._read_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._gap: defaultdict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._unacked_messages: set[Message] = set()
        self._waiting_for_ack: asyncio.Future[Any] | None = None
        self._buffered_partitions: set[TP] = set()
        self._n_acked = 0
        self._commit_every: int | None = None
        self._stopped = _Stopped()
        self.should_stop = False
        self.consumer_stopped_errors: tuple[type[BaseException], ...] = ()
        self.flow_active = True
        self.can_resume_flow = asyncio.Event()
        self.suspend_flow = asyncio.Event()
        self.not_waiting_next_records = asyncio.Event()
        self.fetches: asyncio.Queue[tuple[dict[TP, list[int]], dict[TP, int],
                                          dict[TP, int]]] = asyncio.Queue()
        self.hold_commits: asyncio.Event | None = None
        """Set to an unset event: the next commit waits for it (a slow broker)."""
        self.commits: list[dict[TP, int]] = []
        self.callback: Any = None
        """What faust's own fetch loop hands each record to (the conductor)."""
        self.on_commit: Any = None
        """Called with each commit's offsets before they are committed."""

    def _on_message_in(self, tp: TP, offset: int, message: Message) -> None: ...

    async def wait_first(self, *coroutines: Any) -> None:
        tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    def highwater(self, tp: TP) -> int:
        return self._broker.end(tp)

    def assignment(self) -> set[TP]:
        return set(self._assignment)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _wait_next_records(self, timeout: float  # noqa: ASYNC109 - faust's
                                 ) -> tuple[dict[TP, list[int]], set[TP]]:
        # A fetch comes back when the test hands it over (from the position it was made at),
        # with the positions around it, as the hand-off's wrapper in faust's thread notes.
        fetched, before, after = await self.fetches.get()
        generation = self.app.consumer_generation_id
        setattr(self, flow_fix.FETCHED, {
            tp: flow_fix.Fetched(generation, before[tp], after[tp],
                                 fetched[tp][-1] if fetched[tp] else None) for tp in after})
        return fetched, set(self._assignment)

    def _to_message(self, tp: TP, offset: int) -> Message:
        # As faust's aiokafka driver: the generation when the fetched record is handed on.
        return Message(tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp,
                       generation_id=self.app.consumer_generation_id)

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        if self.hold_commits is not None:
            held, self.hold_commits = self.hold_commits, None
            await held.wait()
        offsets = {tp: offset for tp, offset in
                   self._filter_committable_offsets(list(self._acked)).items()
                   if tp in self._assignment}
        if offsets:
            if self.on_commit is not None:
                self.on_commit(offsets)
            self.commits.append(offsets)
            self._broker.committed.update(offsets)
            self._committed_offset.update(offsets)
        return bool(offsets)

    commit_and_end_transactions = commit


class Model:
    """The hand-off between a modelled faust consumer and an agent that records what it
    decides; the test drives fetches, holds and rebalances."""

    def __init__(self, logs: dict[TP, list[int]], per_record: bool = False) -> None:
        self.broker = _Broker(logs)
        self.app = _App()
        self.consumer = _Consumer(self.app, self.broker)
        self.app.consumer = self.consumer
        self.handoff = BatchHandoff(self.app, frozenset({TOPIC}))
        self.per_record = per_record
        """faust's own fetch loop and a stream that decides and acks each record at once,
        for comparison (the flag off)."""
        if not per_record:
            setattr(self.app, handoff_patch.HANDOFF_ATTRIBUTE, self.handoff)
        self.consumer.callback = self._deliver
        self.stop_flow_at: tuple[TP, int] | None = None
        """(per record) Stop the consumer's flow as this record is handed over."""
        self.decided: list[tuple[int, TP, int]] = []
        """(generation, tp, offset) of each record decided, in order."""
        self.holding: asyncio.Event | None = None
        """Set to an unset event: the agent holds the next batch until it is set."""
        self.held = asyncio.Event()
        self.passed: list[tuple[TP, int, list[int]]] = []
        """Commits that passed a record never decided: (tp, offset, the records)."""
        self._tasks: list[asyncio.Task[None]] = []
        self.consumer.on_commit = self._check

    async def __aenter__(self) -> Model:
        fetcher = _Fetcher()
        self._fetcher = fetcher
        if self.per_record:  # faust's own loop, however the hand-off was installed
            drain = handoff_patch._unfixed.get("drain_messages", Consumer._drain_messages)
            self._tasks = [asyncio.ensure_future(drain(self.consumer, fetcher))]
        else:
            self._tasks = [
                asyncio.ensure_future(handoff_patch._drain_messages(self.consumer, fetcher)),
                asyncio.ensure_future(self.handoff.run(self._decide))]
        return self

    async def _deliver(self, message: Message) -> None:
        # faust's stream, per record: skips other generations and a suspended flow.
        if message.generation_id != self.app.consumer_generation_id \
                or not self.app.flow_control.is_active():
            return
        if (message.tp, message.offset) == self.stop_flow_at:
            self.stop_flow_at = None
            self.consumer.stop_flow()  # a revocation begins while records are handed over
        self.consumer.track_message(message)
        self.decided.append((self.app.consumer_generation_id, message.tp, message.offset))
        self.consumer.ack(message)

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _decide(self, events: Sequence[Held]) -> None:
        if self.holding is not None:
            hold, self.holding = self.holding, None
            self.held.set()
            await hold.wait()
        generation = self.app.consumer_generation_id
        self.decided += [(generation, event.message.tp, event.message.offset)
                         for event in events]

    async def settle(self, rounds: int = 50) -> None:
        """Let every task run until nothing moves."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def fetch(self, count: int = 10, tps: Iterable[TP] | None = None) -> None:
        """The broker answers a fetch of ``count`` records per partition; settles."""
        chosen = list(tps if tps is not None else sorted(self.consumer._assignment))
        before = {tp: self.broker.position[tp] for tp in chosen}
        fetched = {tp: self.broker.fetch(tp, count) for tp in chosen}
        await self.consumer.fetches.put((fetched, before, {tp: self.broker.position[tp]
                                                           for tp in chosen}))
        await self.settle()

    async def fetch_nothing(self) -> None:
        """A fetch that comes back empty (as one with the flow stopped does)."""
        await self.consumer.fetches.put(({}, {}, {}))
        await self.settle()

    def decided_in(self, generation: int) -> dict[TP, set[int]]:
        """The offsets decided in ``generation``, by partition."""
        found: dict[TP, set[int]] = defaultdict(set)
        for decided_generation, tp, offset in self.decided:
            if decided_generation == generation:
                found[tp].add(offset)
        return found

    async def commit(self) -> None:
        """faust's periodic commit."""
        await self.consumer.commit()

    def _check(self, offsets: dict[TP, int]) -> None:
        decided = {(tp, offset) for _, tp, offset in self.decided}
        for tp, offset in offsets.items():
            missing = [number for number in self.broker.logs[tp]
                       if number < offset and (tp, number) not in decided]
            if missing:
                self.passed.append((tp, offset, missing))

    # ---- what faust's rebalance listener and recovery do, in their order
    async def revoke(self, release: asyncio.Event | None = None) -> None:
        """``on_partitions_revoked``: forget the partitions' bookkeeping, suspend the flow,
        clear the stream buffers, wait for what is in flight (``release``, if given, is set
        once the revocation waits), commit."""
        consumer = self.consumer
        for tp in consumer._assignment:
            for table in (consumer._gap, consumer._acked, consumer._acked_index,
                          consumer._read_offset, consumer._committed_offset):
                table.pop(tp, None)
        consumer.stop_flow()
        self.app.flow_control.suspend()
        self.app.flow_control.clear()
        waiting = asyncio.ensure_future(consumer.wait_empty())
        await self.settle()
        if release is not None:
            release.set()
        await waiting

    async def assign(self, tps: set[TP], generation: int) -> None:
        """``on_partitions_assigned`` in a new generation (with the flow fix)."""
        self.app.consumer_generation_id = generation
        self.consumer._assignment.clear()
        self.consumer._assignment.update(tps)
        async def unfixed(self: Any, assigned: set[TP], generation_id: int) -> None: ...
        original = flow_fix._unfixed["on_partitions_assigned"]
        flow_fix._unfixed["on_partitions_assigned"] = unfixed
        try:
            await Consumer.on_partitions_assigned(self.consumer, tps, generation)  # type: ignore[arg-type]
        finally:
            flow_fix._unfixed["on_partitions_assigned"] = original

    async def recover(self) -> None:
        """Recovery's end (``_resume_streams``): seek to committed, resume the flow."""
        await self.consumer.perform_seek()
        self.app.flow_control.resume()
        self.consumer.resume_flow()
        await self.settle()

    async def drain(self, rounds: int = 20) -> None:
        """Fetch until every partition's log is read, then commit."""
        for _ in range(rounds):
            await self.fetch()
            await self.commit()
