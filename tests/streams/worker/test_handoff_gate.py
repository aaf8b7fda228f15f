"""Issue M's gate on the batch hand-off's fetch and agent loops together, in a model of
faust's consumer (:mod:`tests.streams.worker.handoff_model`): batches queued when the flow
is suspended and cleared, ``perform_seek`` while a batch is held, and a partition revoked
and assigned back with a batch from before still queued, held or being handed over. In
each, no commit passes an undecided record, nothing is skipped (every record is decided in
the generation that ends up owning it), and the read offsets and gaps are right."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP

from tests.streams.worker.handoff_model import TOPIC, Model

P0 = TP(TOPIC, 0)


def _log(end: int, *markers: int) -> dict[TP, list[int]]:
    """Partition 0 with records up to ``end`` (excluded); ``markers`` are control records."""
    return {P0: [offset for offset in range(end) if offset not in markers]}


async def _start(model: Model, generation: int = 1) -> None:
    await model.assign({P0}, generation)
    await model.recover()


async def test_batches_queued_through_a_suspension_are_read_again_not_lost() -> None:
    async with Model(_log(40)) as model:
        await _start(model)
        model.holding = asyncio.Event()
        release = model.holding
        await model.fetch()  # 0..9: taken, held by the agent
        assert model.held.is_set()
        await model.fetch()  # 10..19 and 20..29: queued
        await model.fetch()
        await model.fetch()  # 30..39: its hand-off waits for room
        assert model.consumer._read_offset[P0] == 29
        await model.revoke(release)  # suspend and clear with two batches queued
        assert model.decided_in(1) == {P0: set(range(10))}
        assert model.broker.committed[P0] == 10
        # The interrupted hand-off recorded nothing: no read offset left from before.
        assert P0 not in model.consumer._read_offset
        await model.settle()
        assert model.decided_in(1) == {P0: set(range(10))}  # queued batches dropped
        await model.assign({P0}, 2)
        await model.recover()
        assert model.consumer._read_offset[P0] == 10
        await model.drain()
        assert model.decided_in(2) == {P0: set(range(10, 40))}
        assert not model.consumer._gap[P0]
        assert model.broker.committed[P0] == 40
        assert not model.passed


async def test_a_seek_while_a_batch_is_held_neither_skips_nor_passes_it() -> None:
    # The revocation waits for the held batch; meanwhile a fetch comes back with the flow
    # stopped, and faust's getmany seeks every partition back to its committed offset.
    async with Model(_log(30)) as model:
        await _start(model)
        await model.fetch()
        await model.commit()
        assert model.broker.committed[P0] == 10
        model.holding = asyncio.Event()
        release = model.holding
        await model.fetch()  # 10..19 held
        await model.fetch()  # 20..29 queued
        revoking = asyncio.ensure_future(model.revoke())
        await model.settle()
        await model.fetch_nothing()  # getmany with the flow stopped: perform_seek
        assert model.broker.position[P0] == 10
        assert model.consumer._committed_offset[P0] == 10
        release.set()
        await revoking
        assert model.broker.committed[P0] == 20  # the held batch was decided: its ack counts
        await model.assign({P0}, 2)
        await model.recover()
        await model.drain()
        assert model.decided_in(2) == {P0: set(range(20, 30))}
        assert model.broker.committed[P0] == 30
        assert not model.passed


async def test_a_seek_back_in_the_same_generation_decides_again_what_it_rewound() -> None:
    async with Model(_log(30)) as model:
        await _start(model)
        model.holding = asyncio.Event()
        release = model.holding
        await model.fetch()  # 0..9 held
        await model.fetch()  # 10..19 queued
        await model.consumer.perform_seek()  # back to the beginning (nothing committed)
        assert model.broker.position[P0] == 0
        release.set()
        await model.settle()
        await model.drain()
        decided = model.decided_in(1)[P0]
        assert decided == set(range(30))
        assert model.broker.committed[P0] == 30
        assert not model.passed


async def test_a_batch_fetched_before_a_rebalance_does_not_leave_its_read_offsets() -> None:
    # The fetch loop commits (faust's commit_every) between a fetch and its hand-off; the
    # commit waits out a whole rebalance that gives the partition back to this worker.
    # The batch fetched in the old generation must not be decided in the new one, nor
    # its offsets be recorded as read there (the seek's records below them would be
    # dropped as already handed over, and the partition's commits stall).
    async with Model(_log(40)) as model:
        await _start(model)
        await model.fetch()
        await model.commit()  # committed 10
        model.consumer._commit_every = 1
        model.consumer._n_acked = 1
        model.consumer.hold_commits = slow = asyncio.Event()
        await model.fetch()  # 10..19 fetched in generation 1; the loop commits first
        await model.revoke()
        await model.assign({P0}, 2)
        await model.recover()  # seek to 10
        slow.set()
        await model.settle()
        stale_decided = model.decided_in(2)
        model.consumer._commit_every = None
        await model.drain()
        assert model.decided_in(2) == {P0: set(range(10, 40))}
        assert model.broker.committed[P0] == 40
        assert not model.passed
        assert stale_decided == {}


async def test_faust_s_loop_leaves_no_read_offset_from_before_a_rebalance() -> None:
    # The same in faust's own loop (the flag off): it commits between two records of a
    # fetch (every 6 acks here), and the commit waits out a rebalance that gives the
    # partition back. The stream skips the next record (an old generation's), but the loop
    # records it as read: the seek's records 10 and 11 below it were dropped, and the
    # partition's commits stopped at 10.
    model = Model(_log(40), per_record=True)
    model.consumer._commit_every = 6  # faust's loop reads it once, as it starts
    async with model:
        await _start(model)
        await model.fetch()  # 0..9, a commit at 6
        await model.commit()  # committed 10; 4 acks counted towards the next
        model.consumer.hold_commits = slow = asyncio.Event()
        await model.fetch()  # 10 and 11 decided, then the loop commits before 12
        assert model.decided_in(1)[P0] == set(range(12))
        await model.revoke()
        await model.assign({P0}, 2)
        await model.recover()  # seek to 10
        slow.set()
        await model.settle()
        await model.drain()
        assert model.decided_in(2) == {P0: set(range(10, 40))}
        assert model.broker.committed[P0] == 40
        assert not model.passed


async def test_a_batch_fetched_before_a_rebalance_is_not_decided_by_a_non_owner() -> None:
    # As above, but the partition went to another worker: deciding the batch here would
    # write state for a partition this worker no longer owns.
    p1 = TP(TOPIC, 1)
    async with Model({P0: list(range(20)), p1: list(range(20))}) as model:
        await model.assign({P0}, 1)
        await model.recover()
        model.consumer._commit_every = 1
        model.consumer._n_acked = 1
        model.consumer.hold_commits = slow = asyncio.Event()
        await model.fetch()  # 0..9 of partition 0, fetched in generation 1
        await model.revoke()
        await model.assign({p1}, 2)
        await model.recover()
        slow.set()
        await model.settle()
        model.consumer._commit_every = None
        await model.drain()
        assert model.decided_in(2) == {p1: set(range(20))}
        assert P0 not in model.consumer._read_offset
        assert not model.passed


async def test_a_held_batch_across_revoke_and_reassign_is_not_skipped() -> None:
    async with Model(_log(30)) as model:
        await _start(model)
        model.holding = asyncio.Event()
        release = model.holding
        await model.fetch()  # 0..9 held
        await model.fetch()  # 10..19 queued
        await model.revoke(release)
        await model.assign({P0}, 2)
        await model.recover()
        await model.drain()
        assert model.decided_in(2) == {P0: set(range(10, 30))}
        assert model.broker.committed[P0] == 30
        assert not model.passed

@pytest.mark.parametrize("per_record", [False, True], ids=["batch-handoff", "per-record"])
async def test_control_records_leave_no_hole_in_the_commits(per_record: bool) -> None:
    # A transactional producer's commit markers: offsets no fetch returns.
    async with Model(_log(31, 10, 21, 30), per_record) as model:
        model.broker.ends[P0] = 31
        await _start(model)
        await model.drain()
        assert model.decided_in(1) == {P0: set(_log(31, 10, 21, 30)[P0])}
        assert model.broker.committed[P0] == 31  # the trailing marker too: lag 0
        assert not model.passed


@pytest.mark.parametrize("per_record", [False, True], ids=["batch-handoff", "per-record"])
async def test_a_marker_fetched_on_its_own_after_the_commit_is_committed_past(
        per_record: bool) -> None:
    # The records were decided and committed before the producer's commit marker came:
    # the next fetch returns no record, only a position moved past the marker.
    async with Model(_log(10), per_record) as model:
        await _start(model)
        await model.drain(rounds=2)
        assert model.broker.committed[P0] == 10
        model.broker.ends[P0] = 11
        await model.drain(rounds=2)
        assert model.broker.committed[P0] == 11
        assert not model.passed


async def test_a_fetch_cut_short_by_a_revocation_leaves_no_gap_over_what_it_held() -> None:
    # faust's getmany stops handing records over when the flow stops: partition 1's
    # records of that fetch were never handed over, though aiokafka's position is past
    # them. They are not a gap: the seek after the rebalance reads them again.
    p1 = TP(TOPIC, 1)
    async with Model({P0: list(range(20)), p1: list(range(20))}, per_record=True) as model:
        await model.assign({P0, p1}, 1)
        await model.recover()
        await model.fetch()
        model.stop_flow_at = (P0, 12)
        await model.fetch()
        assert model.consumer._read_offset[p1] == 11  # round robin: 10, 11 handed over
        assert not model.consumer._gap[p1]
        await model.revoke()
        await model.assign({P0, p1}, 2)
        await model.recover()
        await model.drain()
        assert model.decided_in(2)[p1] >= set(range(10, 20))
        assert model.broker.committed == {P0: 20, p1: 20}
        assert not model.passed
