"""An attacker's review of the audit trail (issue I): attacks beyond the tamper matrix of
``test_audit_attacks.py``, on the same signed chain of 8 decisions (signed at seq 4 and 7,
both checkpoints anchored), each as an attacker with the sink's or the notary's Redis user
(Redis' admin and other Kafka principals: ``test_audit_redteam_admin.py``). Each test shows
the attack refused or caught loudly: a tamper stop of the sink or notary, ``verify`` or
``query`` refusing, never silence.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.exceptions import ResponseError

from streams.audit import AuditRecord, AuditTamperError, RedisAuditSink
from streams.audit.chain import ChainEntry, Checkpoint, Head, checkpoint_digest
from streams.audit.keys import index_key, redis_for, stream_key
from streams.audit.notary import Notary, load_private_key
from streams.audit.query import Filters, query
from streams.audit.topics import AnchorWriter, TopicReader, read_anchor
from tests.integration import test_audit_attacks as matrix
from tests.integration.conftest import REDIS_ADMIN_USER
from tests.integration.test_audit_attacks import KAFKA, RECORDS, Scene, _decision

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not REDIS_ADMIN_USER and not os.environ.get("CI"),
                                 reason="needs the stack's ACL users")]

# The tamper matrix's signed chain and what it is made of, shared.
settings, decisions, scene = matrix.settings, matrix.decisions, matrix.scene


@contextlib.asynccontextmanager
async def _notary(scene: Scene, key: Ed25519PrivateKey | None = None,
                  compare: bool = True) -> AsyncIterator[Notary]:
    """A notary of the scene's chain (comparing with its topic unless not ``compare``)."""
    client = redis_for(scene.settings.audit, "notary")
    anchor = AnchorWriter(KAFKA, scene.anchor, scene.prefix)
    try:
        yield Notary(client, scene.prefix, 1,
                     key or load_private_key(scene.settings.audit_signing_key_file), every=1,
                     interval_s=3600, topic=TopicReader(KAFKA, scene.topic) if compare else None,
                     anchor=anchor)
    finally:
        await anchor.close()
        await client.aclose()


@contextlib.asynccontextmanager
async def _sink(scene: Scene) -> AsyncIterator[RedisAuditSink]:
    """An appender of the scene's chain, as the sink's user."""
    client = redis_for(scene.settings.audit, "sink")
    try:
        yield RedisAuditSink(client, scene.prefix)
    finally:
        await client.aclose()


async def _query_refused(scene: Scene, match: str) -> None:
    """`jitwatch audit query --subject alice` on the scene refuses, saying ``match``."""
    client = redis_for(scene.settings.audit, "verifier")
    try:
        with pytest.raises(AuditTamperError, match=match):
            await query(client, scene.prefix, 1, Filters(subject="alice"))
    finally:
        await client.aclose()


async def _fake_checkpoint(scene: Scene, head: Head) -> bytes:
    """A checkpoint linked to the newest one, naming the notary's key, but not signed by it."""
    [(_, newest)] = await scene.admin.xrevrange(scene.checkpoints, count=1)
    key_id = Checkpoint.from_payload(newest[b"payload"]).key_id
    payload = Checkpoint(0, head, checkpoint_digest(newest[b"payload"]),
                         datetime.now(UTC).isoformat(timespec="milliseconds"), key_id).payload()
    await scene.attacker.xadd(scene.checkpoints, {"payload": payload, "sig": "00" * 64})
    return payload


# ---------------------------------------------------------------- the notary's Redis user

@pytest.mark.parametrize("rights", ["notary"])
async def test_a_checkpoint_claiming_a_head_far_ahead_does_not_silence_the_notary(
    scene: Scene, rights: str
) -> None:
    """Attack: with the notary's Redis user, XADD (which its ACL must keep) a checkpoint
    claiming seq 10^9. The notary took Redis' newest checkpoint as where signing goes on
    without checking its signature, found the chain "not grown" and signed nothing again,
    healthy and silent. It must refuse a checkpoint it did not sign: a tamper stop."""
    await _fake_checkpoint(scene, Head(10**9, 10**9, "f" * 64))
    async with _notary(scene) as notary:
        with pytest.raises(AuditTamperError, match="not signed by this notary"):  # noqa: PT012
            await notary.load()  # refused here, or the notary stays silent in tick
            await notary.tick(force=True)


@pytest.mark.parametrize("rights", ["notary"])
async def test_a_restarted_notary_never_anchors_a_checkpoint_it_did_not_sign(
    scene: Scene, rights: str
) -> None:
    """Attack: a forged checkpoint in Redis only. On start the notary publishes what the
    anchor lacks; it published the forgery too, so the anchor, the one record outside
    Redis, held it for good. It must check each against its key before anchoring it."""
    await _fake_checkpoint(scene, await scene.head())
    async with _notary(scene) as notary:
        with pytest.raises(AuditTamperError, match="not signed by this notary"):
            await notary.catch_up()
    assert len(await read_anchor(KAFKA, scene.anchor, 0, scene.prefix)) == 2


@pytest.mark.parametrize("rights", ["notary"])
async def test_an_old_checkpoint_appended_again_is_not_where_the_notary_goes_on(
    scene: Scene, rights: str
) -> None:
    """Attack: append checkpoint #0 again (its own signature, so it passes the key check).
    The notary would link its next checkpoint to the copy, extending a checkpoint chain
    verify already calls broken. The newest must link to the one before it."""
    [(_, first), _] = await scene.admin.xrange(scene.checkpoints)
    await scene.attacker.xadd(scene.checkpoints, first)
    async with _notary(scene) as notary:
        with pytest.raises(AuditTamperError, match="does not link to the one before"):
            await notary.load()
        with pytest.raises(AuditTamperError, match="does not link to the one before"):
            await notary.catch_up()  # nor anchored on start


@pytest.mark.parametrize("rights", ["notary"])
async def test_a_checkpoint_of_another_partition_is_not_where_the_notary_goes_on(
    scene: Scene, rights: str
) -> None:
    """Attack: copy partition 0's first checkpoint (its own signature, prev genesis) into
    the empty checkpoint stream of partition 1. It passed the key and link checks, so the
    notary would go on in partition 1 from partition 0's head."""
    [(_, first), _] = await scene.admin.xrange(scene.checkpoints)
    await scene.attacker.xadd(f"{scene.prefix}:cp:p1", first)
    notary = Notary(redis_for(scene.settings.audit, "notary"), scene.prefix, 2,
                    load_private_key(scene.settings.audit_signing_key_file), every=1,
                    interval_s=3600)
    try:
        with pytest.raises(AuditTamperError, match="another partition's"):
            await notary.load()
    finally:
        await notary._client.aclose()


@pytest.mark.parametrize("rights", ["notary"])
async def test_a_checkpoint_without_its_fields_is_named_not_a_crash(
    scene: Scene, rights: str
) -> None:
    """Attack: XADD to the checkpoint stream an entry with neither payload nor sig. Verify
    (and the notary, and export) read ``fields[b"sig"]`` and died with a KeyError: a
    traceback where the auditor needs the checkpoint named."""
    await scene.attacker.xadd(scene.checkpoints, {"x": "1"})
    report = await scene.verify()
    assert report.exit_code == 1
    assert "checkpoint #2" in report.problems[0].what
    async with _notary(scene) as notary:
        with pytest.raises(AuditTamperError):
            await notary.catch_up()


@pytest.mark.parametrize("rights", ["admin"])
async def test_a_notary_rotated_to_a_new_key_goes_on_from_the_old_keys_anchored_checkpoint(
    scene: Scene, rights: str
) -> None:
    """The check above does not break a key rotation: the newest checkpoint, signed by
    the retired key, is in the anchor, so the new notary goes on from it."""
    async with _notary(scene, Ed25519PrivateKey.generate()) as notary:
        assert await notary.catch_up()
        assert await notary.load()


# ---------------------------------------------------------------- the sink's Redis user

@pytest.mark.parametrize("rights", ["sink"])
async def test_a_forged_head_behind_the_sinks_is_not_taken_for_lost_writes(
    scene: Scene, rights: str
) -> None:
    """Attack: with the sink's user, append after the head a well-formed *first* entry
    (seq 0, prev genesis, at its own stream id). The sink took a head that moved back for
    Redis losing acknowledged writes, warned, and went on appending after the forgery. A
    head behind is lost writes only when it is an earlier entry of the same chain (its
    offset and seq as far behind, at its place): otherwise a tamper stop."""
    forged = ChainEntry.after(None, 0, RECORDS, b"mallory", _decision(RECORDS))
    async with _sink(scene) as sink:
        await sink.read_heads([0])
        await scene.attacker.xadd(scene.chain, forged.to_fields(), id=forged.stream_id)
        with pytest.raises(AuditTamperError, match="not an earlier entry"):
            await sink.check_heads()
        assert not sink.resume_from


@pytest.mark.parametrize("rights", ["sink"])
async def test_a_copy_of_the_head_far_ahead_is_a_tamper_stop_not_an_error(
    scene: Scene, rights: str
) -> None:
    """Attack: XADD a copy of the head's fields at stream id 0-1000000. The append function
    saw its head as expected and its XADD failed (an id below the stream's top): an error
    on every restart, never named tampering. A head not at its own offset's id is one."""
    [(_, fields)] = await scene.admin.xrevrange(scene.chain, count=1)
    await scene.attacker.xadd(scene.chain, fields, id="0-1000000")
    async with _sink(scene) as sink:
        sink.add(AuditRecord(0, RECORDS, b"alice", _decision(RECORDS)))
        with pytest.raises(AuditTamperError, match="stream id 0-1000000"):
            await sink.flush()


@pytest.mark.parametrize("rights", ["sink"])
async def test_a_chain_head_that_is_no_entry_is_a_tamper_stop_of_the_notary(
    scene: Scene, rights: str
) -> None:
    """Attack: with the sink's user, XADD an entry without a seq after the head. The
    notary's tick read the head's seq as an int and crashed with a ValueError on every
    start: an error, never named tampering."""
    await scene.attacker.xadd(scene.chain, {"seq": "x"}, id=f"0-{RECORDS + 1}")
    async with _notary(scene) as notary:
        await notary.load()
        with pytest.raises(AuditTamperError, match="is not an entry"):
            await notary.tick(force=True)


@pytest.mark.parametrize("rights", ["sink"])
async def test_an_index_member_moved_out_of_order_cannot_hide_a_decision_from_query(
    scene: Scene, rights: str
) -> None:
    """Attack: ZADD (the sink's ACL must keep it) an existing index member again with score
    1. ZRANGEBYLEX assumes one score for all, so the member falls out of every lexical
    range and `audit query --subject alice` silently missed that decision, while verify
    (which does not read the index) said intact. Query must refuse an altered index."""
    key = index_key(scene.prefix, "subject")
    members = await scene.admin.zrange(key, 0, -1)
    assert len(members) == RECORDS
    await scene.attacker.zadd(key, {members[3]: 1})
    await _query_refused(scene, "index")


@pytest.mark.parametrize("rights", ["sink"])
async def test_a_chain_of_a_partition_the_topic_lacks_shows_in_neither_query_nor_verify(
    scene: Scene, rights: str
) -> None:
    """Attack: with the sink's user, write a well-formed chain at `<prefix>:p99` (the key
    pattern allows it) holding a forged approval for alice, and an index member pointing
    at it. Verify checks partitions 0..N-1 only and said INTACT, while `audit query
    --subject alice` showed the forgery among her decisions. Query refuses an index that
    points outside the topic's partitions; verify reports the chain."""
    forged = ChainEntry.after(None, 99, 0, b"alice", orjson.dumps({
        "decision_id": "d-forged", "action": "approve", "at": "2026-11-23T10:00:00Z",
        "subject": {"id": "alice"}}))
    await scene.attacker.xadd(stream_key(scene.prefix, 99), forged.to_fields(),
                              id=forged.stream_id)
    await scene.attacker.zadd(index_key(scene.prefix, "subject"),
                              {b"alice\x00%013d\x0099:0" % 1795428000000: 0})
    report = await scene.verify()
    assert report.exit_code == 1, [part.line() for part in report.partitions]
    assert "partition 99" in str(report.problems[0])
    await _query_refused(scene, "partition 99")


# ---------------------------------------------------------------- every user

@pytest.mark.parametrize("rights", ["sink", "notary", "verifier"])
async def test_no_user_writes_anothers_stream_through_a_function(
    scene: Scene, rights: str
) -> None:
    """The functions take their keys from the caller: the sink may not append a checkpoint
    (nor chain entries into the checkpoint stream), the notary may not append entries, the
    verifier neither; Redis checks the keys and the commands the function runs against the
    caller's rights. Refused, and nothing changes."""
    payload = Checkpoint(0, await scene.head(), "0" * 64, "2026-11-23T10:00:00Z",
                         "0" * 16).payload()
    cp_call = ("jitwatch_audit_checkpoint", 1, scene.checkpoints, payload, "00")

    def append_to(key: str) -> tuple[Any, ...]:
        return ("jitwatch_audit_append", 5, key, *[scene.chain] * 4, 7, "x", 0, 0, 0, 0, 0)

    calls = {"sink": [cp_call, append_to(scene.checkpoints)],
             "notary": [append_to(scene.chain)],
             "verifier": [cp_call, append_to(scene.chain)]}[rights]
    for call in calls:
        with pytest.raises(ResponseError, match=r"(?i)noperm|no permissions"):
            await scene.attacker.fcall(*call)
    assert (await scene.verify()).exit_code == 0
