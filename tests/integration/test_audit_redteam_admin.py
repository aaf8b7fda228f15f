"""The attacker's review of the audit trail (issue I), continued: attacks by Redis' admin
(who holds neither the notary's key nor Kafka write rights) and by a Kafka principal other
than the notary's, on the signed chain of ``test_audit_attacks.py``. Each is caught loudly:
a tamper stop, an outage the sink says, or ``verify`` naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.audit import AuditRecord, AuditTamperError
from streams.audit.keys import redis_for, stream_key
from streams.audit.sink import run_audit_sink
from streams.audit.topics import read_anchor
from streams.settings import load_settings
from tests.integration import test_audit_attacks as matrix
from tests.integration.conftest import BOOTSTRAP, REDIS_ADMIN_USER, Stack
from tests.integration.test_audit_attacks import KAFKA, RECORDS, Scene, _decision, _topic
from tests.integration.test_audit_redteam import _notary, _sink
from tests.paths import REPO

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not REDIS_ADMIN_USER and not os.environ.get("CI"),
                                 reason="needs the stack's ACL users")]

# The tamper matrix's signed chain and what it is made of, shared.
settings, decisions, scene = matrix.settings, matrix.decisions, matrix.scene


# ---------------------------------------------------------------- Redis' admin

FAKE_LIBRARY = """#!lua name=jitwatch_audit
redis.register_function('jitwatch_audit_append', function(keys, args) return tonumber(args[3]) end)
redis.register_function('jitwatch_audit_checkpoint', function(keys, args) return '0-1' end)
"""


@pytest.mark.parametrize("rights", ["admin"])
async def test_an_append_function_that_acknowledges_without_appending_stops_the_sink(
    scene: Scene, rights: str
) -> None:
    """Attack: Redis' admin loads a `jitwatch_audit` library whose append answers as if
    it appended, and appends nothing. The sink went on committing offsets; at its idle
    check it took the head behind for Redis losing writes, refilled, lost them again,
    every 5 s, a warning each time, and verify said only "sink behind". With no outage
    in between, an append acknowledged and not kept is tampering: the sink checks its
    heads after each flush and stops."""
    real = (REPO / "ops" / "audit-functions.lua").read_text()
    async with _sink(scene) as sink:
        try:
            await scene.admin.function_load(FAKE_LIBRARY, replace=True)
            sink.add(AuditRecord(0, RECORDS, b"alice", _decision(RECORDS)))
            with pytest.raises(AuditTamperError, match="acknowledged"):
                await sink.flush()
        finally:
            await scene.admin.function_load(real, replace=True)


@pytest.mark.parametrize("rights", ["admin"])
async def test_a_checkpoint_function_that_acknowledges_without_appending_stops_the_notary(
    scene: Scene, rights: str
) -> None:
    """The same for the notary: a checkpoint acknowledged and not in Redis was anchored
    anyway, and the next one linked to the one before it, as if Redis had lost it; verify
    caught it, the notary went on. It reads back what it appended before anchoring it."""
    real = (REPO / "ops" / "audit-functions.lua").read_text()
    async with _sink(scene) as sink:
        try:
            sink.add(AuditRecord(0, RECORDS, b"alice", _decision(RECORDS)))
            await sink.flush()
            async with _notary(scene, compare=False) as notary:  # no record at offset 8
                await notary.load()
                await scene.admin.function_load(FAKE_LIBRARY, replace=True)
                with pytest.raises(AuditTamperError, match="acknowledged"):
                    await notary.tick(force=True)
        finally:
            await scene.admin.function_load(real, replace=True)
    assert len(await read_anchor(KAFKA, scene.anchor, 0, scene.prefix)) == 2


@pytest.mark.parametrize("rights", ["admin"])
async def test_a_chain_cut_exactly_at_a_checkpoint_with_the_later_one_hidden_is_caught(
    scene: Scene, rights: str
) -> None:
    """The tail cut back to checkpoint #0 (seq 4), checkpoint #1 removed and Redis' own
    counts reset (XSETID ENTRIESADDED), so the chain and its checkpoints agree and Redis
    shows no removal: the anchor still holds checkpoint #1. The topic holds the entries
    cut too, so the chain also looks like a sink behind: that is no excuse, the dropped
    checkpoint is tampering (1), not "incomplete" (2)."""
    for key, keep in ((scene.chain, 5), (scene.checkpoints, 1)):
        entries = await scene.admin.xrange(key)
        await scene.admin.delete(key)
        for stream_id, fields in entries[:keep]:
            await scene.admin.xadd(key, fields, id=stream_id)
        await scene.admin.execute_command("XSETID", key, entries[keep - 1][0],
                                          "ENTRIESADDED", keep)
    report = await scene.verify()
    assert report.exit_code == 1, [part.line() for part in report.partitions]
    assert "checkpoint #1 was dropped from Redis" in report.problems[0].what


@pytest.mark.parametrize("rights", ["admin"])
async def test_a_paused_redis_is_an_outage_the_sink_says_not_a_silent_hang(
    scene: Scene, rights: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: Redis' admin runs CLIENT PAUSE … WRITE. The sink's append waited on its
    socket without a timeout: forever, without a line in its log, while verify said only
    "sink behind". The sink's and notary's clients time out, so it is an outage: retried
    with a warning each time, as when Redis is down."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from streams.audit import keys

    monkeypatch.setattr(keys, "WRITER_SOCKET_TIMEOUT_S", 1.0)
    async with _sink(scene) as sink:
        await sink.read_heads([0])
        sink.add(AuditRecord(0, RECORDS, b"alice", _decision(RECORDS)))
        await scene.admin.execute_command("CLIENT", "PAUSE", 4000, "WRITE")
        try:
            with pytest.raises(RedisTimeoutError):
                await asyncio.wait_for(sink.flush(), 3)
        finally:
            await scene.admin.execute_command("CLIENT", "UNPAUSE")


# ---------------------------------------------------------------- another Kafka principal

async def _drain(stack: Stack, prefix: str, topic: str, count: int) -> int:
    """Run the real sink loop until its chain holds ``count`` entries (or 30 s); returns
    the chain's length."""
    own = load_settings(**{**{name[len("JITWATCH_"):].lower(): value
                              for name, value in stack.env.items()
                              if name.startswith("JITWATCH_")},
                           "audit_key_prefix": prefix, "audit_group": f"{prefix}-group",
                           "topic_decisions": topic, "topic_partitions": "1"})
    stop = asyncio.Event()
    task = asyncio.create_task(run_audit_sink(own.audit, own.kafka, own.topics, stop))
    admin = redis_for(own.audit, "verifier")
    try:
        for _ in range(300):
            if task.done() or await admin.xlen(stream_key(prefix, 0)) >= count:
                break
            await asyncio.sleep(0.1)
        return int(await admin.xlen(stream_key(prefix, 0)))
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, 10)
        await admin.aclose()


@pytest.mark.parametrize("rights", ["verifier"])
async def test_a_tombstone_on_the_decisions_topic_does_not_break_the_chain_for_good(
    scene: Scene, rights: str, stack: Stack
) -> None:
    """Attack: the worker's Kafka principal (it may write jit.decisions) publishes a record
    without a value. The sink skipped it, so the chain skipped its offset: every verify
    after said TAMPERED and the notary stopped for good, from one record. A tombstone is
    chained like any record (an empty decision); the offsets stay contiguous."""
    topic = f"it-audit-redteam-{uuid.uuid4().hex[:8]}"
    await _topic(topic)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        for n in range(3):
            value = None if n == 1 else orjson.dumps({"decision_id": f"d-{n:032x}"})
            await producer.send_and_wait(topic, value, key=b"k", partition=0)
    finally:
        await producer.stop()
    prefix = f"jitwatch:it-{uuid.uuid4().hex[:8]}:audit"
    assert await _drain(stack, prefix, topic, 3) == 3
    found = Scene(scene.settings, prefix, topic, scene.anchor, scene.admin, scene.attacker)
    report = await found.verify()
    [part] = report.partitions
    assert part.problem is None or part.problem.verdict != "tampered", part.line()
    assert part.compared_with_kafka == 3, part.line()


@pytest.mark.parametrize("rights", ["admin"])
async def test_a_checkpoint_redis_lost_after_it_was_anchored_is_restored_not_signed_again(
    scene: Scene, rights: str
) -> None:
    """Not an attack but the fault suite's Redis kills: Redis killed inside its AOF fsync
    window loses the newest checkpoint after the notary anchored it. The notary then
    signed another checkpoint of that number, so Redis and the anchor held two different
    ones and verify said TAMPERED for good. The anchor is the copy to trust: the notary
    puts back what the anchor holds and Redis lost, and goes on from it."""
    await _lose_newest_checkpoint(scene)
    async with _notary(scene) as notary:
        assert await notary.catch_up()  # on start
        assert await notary.load()
    assert len(await scene.admin.xrange(scene.checkpoints)) == 2
    report = await scene.verify()
    assert report.exit_code == 0, report.problems
    # While running: Redis loses it again after the notary anchored it; the next signing
    # puts it back before linking to it.
    async with _notary(scene) as notary:
        assert await notary.catch_up()
        await notary.load()
        await _lose_newest_checkpoint(scene)
        await notary.restore_lost()
    assert len(await scene.admin.xrange(scene.checkpoints)) == 2
    assert (await scene.verify()).exit_code == 0


async def _lose_newest_checkpoint(scene: Scene) -> None:
    """The checkpoint stream as Redis reloads it from an AOF that missed the newest append:
    the older entries only, and a stream that never counted the lost one (XDEL would
    leave it counted, which verify rightly calls a deletion)."""
    *kept, _ = await scene.admin.xrange(scene.checkpoints)
    await scene.admin.delete(scene.checkpoints)
    for entry_id, fields in kept:
        await scene.admin.xadd(scene.checkpoints, fields, id=entry_id)
