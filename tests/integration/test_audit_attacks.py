"""The tamper matrix (issue I) on the real Redis and Kafka: each attack as an attacker with
the admin's rights and with only the sink's (and some with the notary's). Every attack is
refused by Redis or caught by ``verify`` (against Kafka and the checkpoints' anchor), with
the first bad entry named.

A chain of 8 decisions (offsets 0-7 of a topic of its own) is appended by the sink and
signed twice by the notary (at seq 4 and seq 7), which compares with the topic and anchors
both checkpoints in an anchor topic of the test's own. The module is over 400 lines: the
attacks, their expected findings and the fixture they share are one table, read together.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.exceptions import NoPermissionError, ResponseError

from policy.signatures import fingerprint
from streams.audit import AuditRecord, RedisAuditSink
from streams.audit.against import UnsignedLimits
from streams.audit.chain import GENESIS, ChainEntry, Checkpoint, Head, checkpoint_digest, entry_id
from streams.audit.keyring import Keyring
from streams.audit.keys import checkpoint_key, redis_for, stream_key
from streams.audit.notary import Notary, load_private_key, load_public_key
from streams.audit.topics import AnchorWriter, TopicReader
from streams.audit.verify import VerifyReport, verify_redis
from streams.settings import Settings, load_settings
from tests.integration.conftest import BOOTSTRAP, REDIS_ADMIN_USER, Stack, redis_admin

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not REDIS_ADMIN_USER and not os.environ.get("CI"),
                                 reason="needs the stack's ACL users")]

KAFKA = {"bootstrap_servers": BOOTSTRAP}
RECORDS = 8
Attack = Callable[["Scene"], Awaitable[None]]


@pytest.fixture(scope="module")
def settings(stack: Stack) -> Settings:
    return load_settings(**{name[len("JITWATCH_"):].lower(): value
                            for name, value in stack.env.items()
                            if name.startswith("JITWATCH_")})


async def _topic(name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def decisions(stack: Stack) -> tuple[str, list[AuditRecord]]:
    """A decisions topic of 8 records, and those records as the sink reads them."""
    topic = f"it-audit-attacks-{uuid.uuid4().hex[:8]}"
    await _topic(topic)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    records = []
    try:
        for n in range(RECORDS):
            value = orjson.dumps({"decision_id": f"d-{n:032x}", "action": "approve",
                                  "at": "2026-11-23T10:00:00Z", "subject": {"id": "alice"}})
            meta = await producer.send_and_wait(topic, value, key=b"alice", partition=0)
            records.append(AuditRecord(0, meta.offset, b"alice", value))
    finally:
        await producer.stop()
    return topic, records


@dataclass
class Scene:
    """One signed chain, its attacker's client and what verify needs."""

    settings: Settings
    prefix: str
    topic: str
    anchor: str
    admin: aioredis.Redis
    attacker: aioredis.Redis

    @property
    def chain(self) -> str:
        return stream_key(self.prefix, 0)

    @property
    def checkpoints(self) -> str:
        return checkpoint_key(self.prefix, 0)

    async def head(self) -> Head:
        [(_, fields)] = await self.admin.xrevrange(self.chain, count=1)
        return Head(int(fields[b"seq"]), int(fields[b"offset"]), fields[b"hash"].decode())

    async def verify(self, *extra: Any) -> VerifyReport:
        keyring = Keyring.of(load_public_key(self.settings.audit_verify_key_file), *extra)
        client = redis_for(self.settings.audit, "verifier")
        try:
            return await verify_redis(client, self.prefix, 1, keyring, KAFKA, self.topic,
                                      UnsignedLimits(datetime.now(UTC), 3600, 1000),
                                      self.anchor)
        finally:
            await client.aclose()


@pytest.fixture
async def scene(settings: Settings, decisions: tuple[str, list[AuditRecord]],
                request: pytest.FixtureRequest) -> AsyncIterator[Scene]:
    topic, records = decisions
    prefix = f"jitwatch:it-{uuid.uuid4().hex[:8]}:audit"
    anchor = f"{topic}-cp-{uuid.uuid4().hex[:6]}"
    await _topic(anchor)
    clients = {role: redis_for(settings.audit, role) for role in ("sink", "notary",
                                                                  "verifier")}
    admin = redis_admin()
    writer = AnchorWriter(KAFKA, anchor, prefix)
    sink = RedisAuditSink(clients["sink"], prefix)
    notary = Notary(clients["notary"], prefix, 1,
                    load_private_key(settings.audit_signing_key_file), every=1,
                    interval_s=3600, topic=TopicReader(KAFKA, topic), anchor=writer)
    await notary.load()
    for part in (records[:5], records[5:]):
        for record in part:
            sink.add(record)
        await sink.flush()
        assert await notary.tick(force=True) == 1
    await writer.close()
    attacker = admin if request.node.callspec.params["rights"] == "admin" else \
        clients[request.node.callspec.params["rights"]]
    found = Scene(settings, prefix, topic, anchor, admin, attacker)
    assert (await found.verify()).exit_code == 0, (await found.verify()).problems
    yield found
    keys = [key async for key in admin.scan_iter(match=f"{prefix}:*")]
    if keys:
        await admin.delete(*keys)
    for client in (*clients.values(), admin):
        await client.aclose()


# ---------------------------------------------------------------- the attacks

async def rewrite(scene: Scene, key: str, change: Callable[[list[Any]], list[Any]]) -> None:
    """Replace a stream by ``change(entries)``: DEL and XADD again, as the attacker."""
    entries = await scene.admin.xrange(key)
    await scene.attacker.delete(key)
    for stream_id, fields in change(entries):
        await scene.attacker.xadd(key, fields, id=stream_id)


def _decision(n: int) -> bytes:
    return orjson.dumps({"decision_id": f"d-{n:032x}", "action": "approve", "forged": True})


async def append_forged(scene: Scene, offset: int, **trim: Any) -> None:
    """A well-formed entry linked to the head (hash and link right) for ``offset``."""
    entry = ChainEntry.after(await scene.head(), 0, offset, b"mallory", _decision(offset))
    await scene.attacker.xadd(scene.chain, entry.to_fields(), id=entry_id(offset), **trim)


async def flip_byte(scene: Scene) -> None:
    def flip(entries: list[Any]) -> list[Any]:
        stream_id, fields = entries[3]
        entries[3] = (stream_id, {**fields, b"decision": fields[b"decision"].replace(
            b"approve", b"Approve")})
        return entries
    await rewrite(scene, scene.chain, flip)


async def delete(scene: Scene) -> None:
    await scene.attacker.xdel(scene.chain, entry_id(3))


async def reorder(scene: Scene) -> None:
    def swap(entries: list[Any]) -> list[Any]:
        (id3, f3), (id4, f4) = entries[3], entries[4]
        entries[3], entries[4] = (id3, f4), (id4, f3)
        return entries
    await rewrite(scene, scene.chain, swap)


async def truncate_front(scene: Scene) -> None:
    if scene.attacker is scene.admin:
        await scene.attacker.xtrim(scene.chain, minid=entry_id(2), approximate=False)
    else:  # XADD's own MINID: an ACL cannot refuse it (see ops/redis-acl)
        await append_forged(scene, RECORDS, minid=entry_id(2), approximate=False)


async def truncate_tail(scene: Scene) -> None:
    await rewrite(scene, scene.chain, lambda entries: entries[:6])


async def skip_offset(scene: Scene) -> None:
    if scene.attacker is scene.admin:  # rebuild the chain without offset 3, fresh hashes
        entries = await scene.admin.xrange(scene.chain)
        await scene.attacker.delete(scene.chain)
        head = None
        for _, fields in entries[:3] + entries[4:]:
            entry = ChainEntry.after(head, 0, int(fields[b"offset"]), fields[b"key"],
                                     fields[b"decision"])
            await scene.attacker.xadd(scene.chain, entry.to_fields(), id=entry.stream_id)
            head = entry.as_head
    else:
        await append_forged(scene, RECORDS + 1)


async def invent_far_ahead(scene: Scene) -> None:
    await append_forged(scene, 1_000_000)


async def drop_checkpoint(scene: Scene) -> None:
    await rewrite(scene, scene.checkpoints, lambda entries: entries[:1])


async def replace_checkpoint(scene: Scene) -> None:
    def replace(entries: list[Any]) -> list[Any]:
        stream_id, fields = entries[1]
        signed = Checkpoint.from_payload(fields[b"payload"])
        payload = Checkpoint(0, signed.head, signed.prev, "2026-01-01T00:00:00.000+00:00",
                             signed.key_id).payload()
        return [entries[0], (stream_id, {b"payload": payload, b"sig": fields[b"sig"]})]
    await rewrite(scene, scene.checkpoints, replace)


FORGER = Ed25519PrivateKey.generate()


async def rotate_keys(scene: Scene) -> None:
    """The chain rewritten from seq 3 and every checkpoint re-signed with a key of the
    attacker's, as if the notary's key had been rotated."""
    entries = await scene.admin.xrange(scene.chain)
    head: Head | None = None
    rebuilt = []
    for n, (_, fields) in enumerate(entries):
        decision = _decision(n) if n >= 3 else fields[b"decision"]
        entry = ChainEntry.after(head, 0, int(fields[b"offset"]), fields[b"key"], decision)
        rebuilt.append(entry)
        head = entry.as_head
    await scene.attacker.delete(scene.chain)
    for entry in rebuilt:
        await scene.attacker.xadd(scene.chain, entry.to_fields(), id=entry.stream_id)
    await scene.attacker.delete(scene.checkpoints)
    prev = GENESIS
    for seq in (4, 7):
        payload = Checkpoint(0, rebuilt[seq].as_head, prev, "2026-11-23T10:00:00.000+00:00",
                             fingerprint(FORGER.public_key())).payload()
        await scene.attacker.xadd(scene.checkpoints, {
            "payload": payload, "sig": FORGER.sign(payload).hex()})
        prev = checkpoint_digest(payload)


# Per attack: (seq of the first bad entry, what verify says) when the admin does it.
ADMIN = {
    "flip_byte": (3, "hash does not match"),
    "delete": (4, "expected seq 3"),
    "reorder": (4, "does not belong to offset 4"),
    "truncate_front": (2, "expected seq 0"),
    "truncate_tail": (6, "the tail was truncated"),
    "skip_offset": (3, "offset 3 is missing"),
    "invent_far_ahead": (8, "offset 8 is missing"),
    "drop_checkpoint": (7, "was dropped from Redis"),
    "replace_checkpoint": (7, "signature invalid"),
    "rotate_keys": (4, "not in the keyring"),
}
# With only the sink's rights an attack is refused, or caught as named here.
SINK = {
    "truncate_front": (2, "expected seq 0"),
    "skip_offset": (8, "offset 8 is missing"),
    "invent_far_ahead": (8, "offset 8 is missing"),
}
ATTACKS: dict[str, Attack] = {attack.__name__: attack for attack in (
    flip_byte, delete, reorder, truncate_front, truncate_tail, skip_offset, invent_far_ahead,
    drop_checkpoint, replace_checkpoint, rotate_keys)}


@pytest.mark.parametrize("rights", ["admin", "sink"])
@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_every_attack_is_refused_or_caught_with_the_first_bad_entry_named(
    scene: Scene, attack: str, rights: str
) -> None:
    expected = (ADMIN if rights == "admin" else SINK).get(attack)
    refused = None
    try:
        await ATTACKS[attack](scene)
    except (NoPermissionError, ResponseError) as exc:
        refused = exc
    if refused is not None:
        # Refused by Redis: the sink may not delete, trim, rewrite or touch checkpoints.
        assert expected is None, f"{attack} as {rights} was refused: {refused}"
        assert (await scene.verify()).exit_code == 0
        return
    assert expected is not None, f"{attack} as {rights} was not refused"
    report = await scene.verify()
    assert report.exit_code == 1, [part.line() for part in report.partitions]
    [problem] = report.problems
    seq, what = expected
    assert (problem.verdict, problem.seq) == ("tampered", seq), str(problem)
    assert what in problem.what, str(problem)


@pytest.mark.parametrize("rights", ["notary"])
async def test_a_notary_trimming_its_checkpoints_is_caught(scene: Scene, rights: str) -> None:
    """XADD's MAXLEN cannot be refused by an ACL: the notary's user can empty its
    checkpoint stream. Redis' own count and the anchor both show it."""
    await scene.attacker.xadd(scene.checkpoints, {"payload": b"{}", "sig": b""}, maxlen=0,
                              approximate=False)
    report = await scene.verify()
    assert report.exit_code == 1
    assert "3 of the 3 checkpoints ever appended were removed" in report.problems[0].what


@pytest.mark.parametrize("rights", ["sink", "notary", "verifier"])
async def test_each_user_is_refused_what_would_erase(scene: Scene, rights: str) -> None:
    """XTRIM, DEL, XDEL, FUNCTION DELETE/FLUSH, CONFIG and FLUSHALL: refused to every user,
    and XADD with MAXLEN or MINID to the verifier and on another role's keys. On a writer's
    own keys XADD's MAXLEN/MINID cannot be refused by an ACL (it refuses commands, not
    arguments): the matrix above shows that trim caught instead."""
    client = scene.attacker
    own, other = (scene.chain, scene.checkpoints) if rights == "sink" else \
        (scene.checkpoints, scene.chain)
    attempts: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.xtrim(own, maxlen=0), lambda: client.delete(own),
        lambda: client.xdel(own, "0-1"),
        lambda: client.xadd(other, {"x": b"1"}, maxlen=0, approximate=False),
        lambda: client.xadd(other, {"x": b"1"}, minid="9-0", approximate=False),
        lambda: client.execute_command("FUNCTION", "DELETE", "jitwatch_audit"),
        lambda: client.execute_command("FUNCTION", "FLUSH"),
        lambda: client.config_set("appendonly", "no"), lambda: client.flushall()]
    if rights == "verifier":
        attempts += [lambda: client.xadd(own, {"x": b"1"}, maxlen=0, approximate=False),
                     lambda: client.xadd(own, {"x": b"1"}, minid="9-0", approximate=False)]
    for attempt in attempts:
        with pytest.raises(NoPermissionError):
            await attempt()
    assert (await scene.verify()).exit_code == 0


@pytest.mark.parametrize("rights", ["admin"])
async def test_checkpoints_of_a_rotated_key_verify_with_the_keyring(
    scene: Scene, rights: str, tmp_path: Any
) -> None:
    """A real rotation: the notary signs on with a new key. Old and new checkpoints verify
    with both public keys; with the old key alone the new checkpoint is unknown."""
    from streams.audit.notary import generate_keys

    private, public = generate_keys(tmp_path / "new")
    new_key = load_private_key(private)
    head = await scene.head()
    [(_, newest)] = await scene.admin.xrevrange(scene.checkpoints, count=1)
    payload = Checkpoint(0, head, checkpoint_digest(newest[b"payload"]),
                         datetime.now(UTC).isoformat(timespec="milliseconds"),
                         fingerprint(new_key.public_key())).payload()
    await scene.admin.fcall("jitwatch_audit_checkpoint", 1, scene.checkpoints, payload,
                            new_key.sign(payload).hex())
    old_only = await scene.verify()
    assert old_only.exit_code == 1
    assert "not in the keyring" in old_only.problems[0].what
    both = await scene.verify(load_public_key(public))
    # The anchor has the notary's two checkpoints, Redis three: the third is not anchored.
    assert both.exit_code == 2, [part.line() for part in both.partitions]
    assert "not yet in" in both.problems[0].what


@pytest.mark.parametrize("rights", ["admin"])
async def test_the_notary_never_signs_what_differs_from_the_topic(
    scene: Scene, rights: str, decisions: tuple[str, list[AuditRecord]],
    caplog: pytest.LogCaptureFixture
) -> None:
    """A well-linked entry with no record in the topic (hash, link and offset all right):
    only the comparison with Kafka shows it. The notary logs it and stops, unsigned."""
    from streams.audit import AuditTamperError

    await append_forged(scene, RECORDS)
    client = redis_for(scene.settings.audit, "notary")
    notary = Notary(client, scene.prefix, 1,
                    load_private_key(scene.settings.audit_signing_key_file), every=1,
                    interval_s=3600, topic=TopicReader(KAFKA, scene.topic))
    try:
        await notary.load()
        with pytest.raises(AuditTamperError, match="seq 8 offset 8 differs from the decisions"):
            await notary.tick(force=True)
    finally:
        await client.aclose()
    assert await scene.admin.xlen(scene.checkpoints) == 2
    assert "TAMPERING: audit chain of partition 0 seq 8 offset 8" in caplog.text


@pytest.mark.parametrize("rights", ["admin"])
async def test_a_sink_restarted_on_a_head_invented_ahead_stops_again(
    scene: Scene, rights: str, stack: Stack, logs: Any
) -> None:
    """The forged far-ahead head does not make a restarted sink wait in silence: it exits 3
    (a tamper stop) at once, every time it is started."""
    import asyncio

    await append_forged(scene, 1_000_000)
    for _ in range(2):
        process = stack.start("audit-sink", logs, JITWATCH_AUDIT_KEY_PREFIX=scene.prefix,
                              JITWATCH_AUDIT_GROUP=f"{scene.prefix}-group",
                              JITWATCH_TOPIC_DECISIONS=scene.topic,
                              JITWATCH_TOPIC_PARTITIONS="1")
        assert await asyncio.to_thread(process.wait, 60) == 3
    text = "".join(path.read_text(errors="replace") for path in logs.glob("audit-sink-*.log"))
    assert "TAMPER STOP (audit sink)" in text
    assert "for offset 1000000, but the topic ends before offset 8" in text
