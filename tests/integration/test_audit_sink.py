"""The Redis audit sink on a real Redis: order kept, replays not appended twice."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from streams.audit import AuditRecord, RedisAuditSink, stream_key

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix(stack: object) -> str:  # `stack` checks that Redis is reachable (or fails in CI)
    return f"jitwatch:test-{uuid.uuid4().hex[:8]}:audit"


async def test_flush_appends_in_offset_order_and_skips_replays(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    sink = RedisAuditSink(redis_client, prefix)
    for offset in range(3):
        sink.add(AuditRecord(0, offset, b"alice", f'{{"n": {offset}}}'.encode()))
    sink.add(AuditRecord(1, 7, b"bob", b'{"n": 7}'))
    assert len(sink) == 4
    assert await sink.flush() == 4
    assert len(sink) == 0

    # Redelivery after a crash: offsets 1..2 again, then one new record.
    for offset in (1, 2, 3):
        sink.add(AuditRecord(0, offset, b"alice", f'{{"n": {offset}}}'.encode()))
    assert await sink.flush() == 1

    entries = await redis_client.xrange(stream_key(prefix, 0))
    assert [fields[b"offset"] for _, fields in entries] == [b"0", b"1", b"2", b"3"]
    assert [entry_id for entry_id, _ in entries] == [b"0-1", b"0-2", b"0-3", b"0-4"]
    assert await redis_client.xlen(stream_key(prefix, 1)) == 1
    await redis_client.delete(stream_key(prefix, 0), stream_key(prefix, 1))


async def test_empty_flush_writes_nothing(redis_client: aioredis.Redis, prefix: str) -> None:
    assert await RedisAuditSink(redis_client, prefix).flush() == 0
    assert await redis_client.exists(stream_key(prefix, 0)) == 0


async def test_batches_larger_than_one_transaction_chain_across_flushes(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A partition's batch goes out as several transactions on one connection, each linking
    to the head the one before leaves, and the next flush goes on where the chain ends."""
    from streams.audit.chain import ChainVerifier
    from streams.audit.transactions import TRANSACTION_ENTRIES as _TRANSACTION_ENTRIES

    count = 2 * _TRANSACTION_ENTRIES + 7
    sink = RedisAuditSink(redis_client, prefix)
    for offset in range(count):
        sink.add(AuditRecord(0, offset, b"alice", b'{"n": %d}' % offset))
    assert await sink.flush() == count
    for offset in range(count, 2 * count):
        sink.add(AuditRecord(0, offset, b"alice", b'{"n": %d}' % offset))
    assert await sink.flush() == count

    verifier = ChainVerifier(0, None)
    assert verifier.feed_all(await redis_client.xrange(stream_key(prefix, 0))) is None
    assert verifier.finish() is None
    assert verifier.entries == 2 * count
    await redis_client.delete(stream_key(prefix, 0))


@pytest.mark.parametrize("forged_offset", [1, 1_000_000])
async def test_a_foreign_write_after_the_sinks_head_is_refused_and_stops_the_sink(
    redis_client: aioredis.Redis, prefix: str, forged_offset: int
) -> None:
    """The head check and the append are one step (the append function): an entry another
    writer adds after the head the sink knows makes Redis refuse the append (STALEHEAD), and
    the sink stops on what it finds, however far ahead the forged entry claims to be."""
    from streams.audit.chain import AuditTamperError

    sink = RedisAuditSink(redis_client, prefix)
    sink.add(AuditRecord(0, 0, b"alice", b'{"n": 0}'))
    assert await sink.flush() == 1
    await redis_client.xadd(stream_key(prefix, 0), {
        "seq": b"1", "offset": b"%d" % forged_offset, "decision": b"forged",
        "hash": b"f" * 64}, id=f"0-{forged_offset + 1}")
    sink.add(AuditRecord(0, 1, b"alice", b'{"n": 1}'))
    with pytest.raises(AuditTamperError, match="offset 1 "):
        await sink.flush()
    entries = await redis_client.xrange(stream_key(prefix, 0))
    assert [fields[b"decision"] for _, fields in entries] == [b'{"n": 0}', b"forged"]
    await redis_client.delete(stream_key(prefix, 0))
