"""The audit trail as evidence, on the real Redis: chain, checkpoints, verify, query, export,
tamper detection and the ACL users' limits.

The sink, notary and verifier run as their own ACL users (``ops/stack env``); tampering and
cleanup use the ops-only admin user, as an attacker with full Redis access would.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.exceptions import (
    AuthenticationError,
    ExecAbortError,
    NoPermissionError,
    ResponseError,
)

from policy.signatures import fingerprint as key_id
from streams.audit import AuditRecord, AuditTamperError, RedisAuditSink
from streams.audit.chain import Checkpoint
from streams.audit.keys import checkpoint_key, redis_for, stream_key
from streams.audit.notary import Notary, load_private_key, load_public_key
from streams.audit.query import Filters, export, query
from streams.audit.verify import VerifyReport, verify_export, verify_redis
from streams.settings import Settings, load_settings
from tests.integration.conftest import REDIS_ADMIN_USER, REDIS_URL, REPO, Stack, secrets_of

pytestmark = pytest.mark.integration

PARTITIONS = 2
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return load_settings(**{name[len("JITWATCH_"):].lower(): value
                            for name, value in stack.env.items()
                            if name.startswith("JITWATCH_")})


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    name = f"jitwatch:test-{uuid.uuid4().hex[:8]}:audit"
    yield name
    keys = [key async for key in redis_client.scan_iter(match=f"{name}:*", count=1000)]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture
async def role(settings: Settings) -> AsyncIterator[Callable[[str], aioredis.Redis]]:
    clients: list[aioredis.Redis] = []

    def client(name: str) -> aioredis.Redis:
        clients.append(redis_for(settings.audit, name))  # type: ignore[arg-type]
        return clients[-1]

    yield client
    for item in clients:
        await item.aclose()


def decision(n: int, subject: str = "alice", action: str = "approve",
             rule: str = "auto-approve", minutes: int = 0) -> bytes:
    return orjson.dumps({
        "schema": "jit.decision/v1", "decision_id": f"d-{n:032x}", "action": action,
        "at": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "subject": {"id": subject}, "request_id": f"r-{n}", "rule": {"id": rule},
        "reason": "test"})


async def fill(sink: RedisAuditSink, count: int, partition: int = 0, start: int = 0) -> None:
    for offset in range(start, start + count):
        sink.add(AuditRecord(partition, offset, b"alice", decision(offset + 100 * partition,
                                                                    minutes=offset)))
    await sink.flush()


async def verified(settings: Settings, prefix: str, client: aioredis.Redis) -> VerifyReport:
    return await verify_redis(client, prefix, PARTITIONS,
                              load_public_key(settings.audit_verify_key_file))


async def sign_all(settings: Settings, prefix: str, client: aioredis.Redis) -> Notary:
    notary = Notary(client, prefix, PARTITIONS, load_private_key(
        settings.audit_signing_key_file), every=1, interval_s=3600)
    await notary.load()
    await notary.tick(force=True)
    return notary


async def signed_chain(settings: Settings, prefix: str,
                       role: Callable[[str], aioredis.Redis], count: int) -> None:
    """``count`` entries in partition 0, appended by the sink and signed by the notary."""
    await fill(RedisAuditSink(role("sink"), prefix), count)
    await sign_all(settings, prefix, role("notary"))


async def test_sink_chains_notary_signs_verifier_passes(
    settings: Settings, prefix: str, role: Callable[[str], aioredis.Redis]
) -> None:
    sink = RedisAuditSink(role("sink"), prefix)
    await fill(sink, 10, partition=0)
    await fill(sink, 3, partition=1)
    notary = await sign_all(settings, prefix, role("notary"))
    await fill(sink, 5, partition=0, start=10)
    assert await notary.tick(force=True) == 1  # only partition 0 grew
    report = await verified(settings, prefix, role("verifier"))
    assert report.exit_code == 0, report.problems
    assert [(p.entries, p.checkpoints, p.signed_through) for p in report.partitions] == \
        [(15, 2, 14), (3, 1, 2)]


async def test_a_replay_is_recognised_and_a_different_entry_stops_the_sink(
    prefix: str, role: Callable[[str], aioredis.Redis]
) -> None:
    sink = RedisAuditSink(role("sink"), prefix)
    await fill(sink, 4)
    for offset in (2, 3):
        sink.add(AuditRecord(0, offset, b"alice", decision(offset, minutes=offset)))
    sink.add(AuditRecord(0, 4, b"alice", decision(4, minutes=4)))
    assert await sink.flush() == 1
    fresh = RedisAuditSink(role("sink"), prefix)  # a restarted sink knows no heads
    fresh.add(AuditRecord(0, 1, b"alice", decision(1, action="deny")))
    with pytest.raises(AuditTamperError, match="offset 1"):
        await fresh.flush()


async def test_a_chain_that_lost_its_tail_is_refilled(
    settings: Settings, prefix: str, redis_client: aioredis.Redis,
    role: Callable[[str], aioredis.Redis]
) -> None:
    """What Redis loses after a crash inside the AOF fsync window: the sink sees its head
    move back and asks for the lost offsets again."""
    sink = RedisAuditSink(role("sink"), prefix)
    await fill(sink, 6)
    await rewrite(redis_client, stream_key(prefix, 0), lambda entries: entries[:4])
    await sink.check_heads()
    assert sink.resume_from == {0: 4}
    sink.resume_from.clear()
    await fill(sink, 2, start=4)
    assert (await verified(settings, prefix, role("verifier"))).exit_code == 0


async def test_the_notary_links_to_the_checkpoint_redis_has(
    settings: Settings, prefix: str, redis_client: aioredis.Redis,
    role: Callable[[str], aioredis.Redis]
) -> None:
    """Redis lost the newest checkpoint (OS crash in the fsync window): the notary's next
    one links to what is there, so verify still passes."""
    sink = RedisAuditSink(role("sink"), prefix)
    await fill(sink, 3)
    notary = await sign_all(settings, prefix, role("notary"))
    await fill(sink, 2, start=3)
    await notary.tick(force=True)
    await rewrite(redis_client, checkpoint_key(prefix, 0), lambda entries: entries[:1])
    await fill(sink, 2, start=5)
    assert await notary.tick(force=True) == 1
    report = await verified(settings, prefix, role("verifier"))
    assert report.exit_code == 0, report.problems
    assert report.partitions[0].checkpoints == 2


# ---------------------------------------------------------------- tampering, as an admin

async def rewrite(client: aioredis.Redis, key: str,
                  change: Callable[[list[Any]], list[Any]]) -> None:
    """Replace a stream by ``change(entries)``, re-adding with the given ids: what an
    attacker with full Redis access can do (streams only grow otherwise)."""
    entries = await client.xrange(key)
    await client.delete(key)
    for entry_id, fields in change(entries):
        await client.xadd(key, fields, id=entry_id)


def flip_byte(entries: list[Any]) -> list[Any]:
    entry_id, fields = entries[3]
    decision_bytes = bytearray(fields[b"decision"])
    decision_bytes[decision_bytes.index(b"approve")] ^= 0x20  # 'a' -> 'A'
    entries[3] = (entry_id, {**fields, b"decision": bytes(decision_bytes)})
    return entries


def delete_middle(entries: list[Any]) -> list[Any]:
    return entries[:3] + entries[4:]


def reorder(entries: list[Any]) -> list[Any]:
    (id3, f3), (id4, f4) = entries[3], entries[4]
    entries[3], entries[4] = (id3, f4), (id4, f3)
    return entries


def insert(entries: list[Any]) -> list[Any]:
    # A forged entry in the place of offset 4, linked to its predecessor.
    _, before = entries[3]
    forged = {**before, b"offset": b"4", b"seq": b"4", b"prev": before[b"hash"]}
    return [*entries[:4], ("0-5", forged), *entries[5:]]


def truncate_tail(entries: list[Any]) -> list[Any]:
    return entries[:5]


@pytest.mark.parametrize(("tamper", "seq", "what"), [
    (flip_byte, 3, "hash does not match"),
    (delete_middle, 4, "expected seq 3"),
    (reorder, 4, "stream id 0-4 does not belong to offset 4"),
    (insert, 4, "hash does not match"),
    (truncate_tail, 5, "truncated"),
])
async def test_tampering_is_found_and_the_first_bad_entry_named(
    settings: Settings, prefix: str, redis_client: aioredis.Redis,
    role: Callable[[str], aioredis.Redis], tamper: Callable[[list[Any]], list[Any]], seq: int,
    what: str,
) -> None:
    sink = RedisAuditSink(role("sink"), prefix)
    for offset in range(8):
        sink.add(AuditRecord(0, offset, b"alice", decision(offset, minutes=offset)))
    await sink.flush()
    await sign_all(settings, prefix, role("notary"))
    assert (await verified(settings, prefix, role("verifier"))).exit_code == 0
    await rewrite(redis_client, stream_key(prefix, 0), tamper)
    report = await verified(settings, prefix, role("verifier"))
    assert report.exit_code == 1
    [problem] = report.problems
    assert (problem.partition, problem.seq) == (0, seq), str(problem)
    assert what in problem.what


async def test_a_forged_checkpoint_signature_is_found(
    settings: Settings, prefix: str, redis_client: aioredis.Redis,
    role: Callable[[str], aioredis.Redis]
) -> None:
    await signed_chain(settings, prefix, role, 5)
    forger = Ed25519PrivateKey.generate()

    def resign(entries: list[Any]) -> list[Any]:
        entry_id, fields = entries[0]
        checkpoint = Checkpoint.from_payload(fields[b"payload"])
        payload = Checkpoint(0, checkpoint.head, checkpoint.prev, checkpoint.at,
                             key_id(forger.public_key())).payload()
        return [(entry_id, {b"payload": payload, b"sig": forger.sign(payload).hex()})]

    await rewrite(redis_client, checkpoint_key(prefix, 0), resign)
    report = await verified(settings, prefix, role("verifier"))
    assert report.exit_code == 1
    assert "not in the keyring" in report.problems[0].what


async def test_a_rewritten_chain_with_fresh_hashes_is_caught_by_the_checkpoint(
    settings: Settings, prefix: str, redis_client: aioredis.Redis,
    role: Callable[[str], aioredis.Redis]
) -> None:
    await signed_chain(settings, prefix, role, 5)
    await redis_client.delete(stream_key(prefix, 0))
    attacker = RedisAuditSink(redis_client, prefix)
    for offset in range(5):  # a consistent chain, one verdict changed
        attacker.add(AuditRecord(0, offset, b"alice", decision(
            offset, action="deny" if offset == 2 else "approve", minutes=offset)))
    await attacker.flush()
    report = await verified(settings, prefix, role("verifier"))
    assert report.exit_code == 1
    assert report.problems[0].seq == 4
    assert "notary signed" in report.problems[0].what


def cli(stack: Stack, prefix: str, *args: str,
        **env: str) -> subprocess.CompletedProcess[str]:
    """``jitwatch audit ARGS`` on the test's keys, as the operators run it."""
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "audit", *args], cwd=REPO,
        env={**stack.env, "JITWATCH_AUDIT_KEY_PREFIX": prefix,
             "JITWATCH_TOPIC_PARTITIONS": str(PARTITIONS), **env},
        capture_output=True, text=True, timeout=60, check=False)


async def test_verify_command_reports_an_unsigned_chain_and_takes_a_keys_file(
    stack: Stack, settings: Settings, prefix: str, role: Callable[[str], aioredis.Redis],
    tmp_path: Path
) -> None:
    """Issue I: a chain nothing signs is exit 2 (UNSIGNED) unless --allow-unsigned; the
    notary's key may come from a keys file with its validity period."""
    await fill(RedisAuditSink(role("sink"), prefix), 3)
    unsigned = cli(stack, prefix, "verify")
    assert unsigned.returncode == 2, unsigned.stdout + unsigned.stderr
    assert "UNSIGNED: partition 0 seq 0: 3 entries and no checkpoint" in unsigned.stdout
    allowed = cli(stack, prefix, "verify", "--allow-unsigned")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "allowed: 3 entries and no checkpoint" in allowed.stdout
    await sign_all(settings, prefix, role("notary"))
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[keys]]\nfile = "{settings.audit_verify_key_file}"\n'
                    'valid_from = "2020-01-01T00:00:00Z"\n')
    signed = cli(stack, prefix, "verify", "--keys", str(keys),
                 JITWATCH_AUDIT_VERIFY_KEY_FILE="")
    assert signed.returncode == 0, signed.stdout + signed.stderr
    keys.write_text(f'[[keys]]\nfile = "{settings.audit_verify_key_file}"\n'
                    'valid_until = "2020-01-01T00:00:00Z"\n')
    retired = cli(stack, prefix, "verify", "--keys", str(keys))
    assert retired.returncode == 1
    assert "outside that key's validity period" in retired.stdout


async def test_verify_command_names_the_entry_and_exits_1(
    stack: Stack, settings: Settings, prefix: str, redis_client: aioredis.Redis,
    role: Callable[[str], aioredis.Redis]
) -> None:
    await signed_chain(settings, prefix, role, 6)

    ok = cli(stack, prefix, "verify")
    assert ok.returncode == 0, ok.stderr
    assert "INTACT" in ok.stdout
    await rewrite(redis_client, stream_key(prefix, 0), delete_middle)
    bad = cli(stack, prefix, "verify")
    assert bad.returncode == 1
    assert "TAMPERED: first bad entry: partition 0 seq 4 offset 4" in bad.stderr
    output = ok.stdout + ok.stderr + bad.stdout + bad.stderr
    assert not [secret for secret in secrets_of(stack.env) if secret in output]



# ---------------------------------------------------------------- query and export

async def test_query_by_subject_request_action_rule_and_time(
    prefix: str, role: Callable[[str], aioredis.Redis]
) -> None:
    sink = RedisAuditSink(role("sink"), prefix)
    rows = [("alice", "approve", "auto-approve"), ("bob", "deny", "ttl-max"),
            ("alice", "revoke", "max-active-resources"), ("bob", "approve", "auto-approve"),
            ("alice", "deny", "ttl-max")]
    for n, (subject, action, rule) in enumerate(rows):
        sink.add(AuditRecord(n % PARTITIONS, n, subject.encode(),
                             decision(n, subject, action, rule, minutes=n)))
    await sink.flush()
    client = role("verifier")

    async def ids(**criteria: Any) -> list[str]:
        found = await query(client, prefix, PARTITIONS, Filters(**criteria))
        return [item.decision["request_id"] for item in found]

    assert await ids(subject="alice") == ["r-0", "r-2", "r-4"]
    assert await ids(request="r-3") == ["r-3"]
    assert await ids(action="deny") == ["r-1", "r-4"]
    assert await ids(rule="auto-approve") == ["r-0", "r-3"]
    assert await ids(subject="alice", action="deny") == ["r-4"]
    assert await ids(subject="bob", since=T0 + timedelta(minutes=2)) == ["r-3"]
    assert await ids(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)) == \
        ["r-1", "r-2", "r-3"]
    assert await ids(subject="alice", limit=2) == ["r-0", "r-2"]
    assert await ids(subject="nobody") == []


async def test_query_reads_batched_index_members_once_and_to_the_millisecond(
    prefix: str, redis_client: aioredis.Redis, role: Callable[[str], aioredis.Redis]
) -> None:
    """Action and rule members list a batch's entries of one second together; a refill
    after Redis lost a chain's tail lists some offsets again. Each entry is found once, and
    a time range cuts inside a second."""
    sink = RedisAuditSink(role("sink"), prefix)
    at = [T0 + timedelta(milliseconds=250 * n) for n in range(8)]  # two seconds, 4 each

    def record(n: int) -> AuditRecord:
        return AuditRecord(0, n, b"alice", orjson.dumps({
            "decision_id": f"d-{n}", "action": "deny", "rule": {"id": "ttl-max"},
            "subject": {"id": "alice"}, "request_id": f"r-{n}",
            "at": at[n].isoformat().replace("+00:00", "Z")}))

    for n in range(8):
        sink.add(record(n))
    await sink.flush()
    await rewrite(redis_client, stream_key(prefix, 0), lambda entries: entries[:5])
    await sink.check_heads()
    sink.resume_from.clear()
    for n in range(5, 8):
        sink.add(record(n))
    await sink.flush()
    client = role("verifier")

    async def ids(**criteria: Any) -> list[str]:
        found = await query(client, prefix, PARTITIONS, Filters(**criteria))
        return [item.decision["request_id"] for item in found]

    assert await ids(action="deny") == [f"r-{n}" for n in range(8)]
    assert await ids(rule="ttl-max", since=at[2], until=at[5]) == ["r-2", "r-3", "r-4", "r-5"]
    assert await ids(action="deny", since=at[7]) == ["r-7"]


async def test_export_verifies_offline_and_shows_tampering(
    settings: Settings, prefix: str, role: Callable[[str], aioredis.Redis]
) -> None:
    sink = RedisAuditSink(role("sink"), prefix)
    await fill(sink, 6, partition=0)
    await fill(sink, 2, partition=1)
    await sign_all(settings, prefix, role("notary"))
    out = io.BytesIO()
    lines = await export(role("verifier"), prefix, list(range(PARTITIONS)), out)
    assert lines == 1 + 2 + 8 + 1  # header, a checkpoint per partition, entries, end
    public_key = load_public_key(settings.audit_verify_key_file)
    exported = out.getvalue().splitlines()
    assert verify_export(exported, public_key).exit_code == 0
    changed = [line.replace(b"approve", b"APPROVE", 1) if b'"seq":2' in line
               and b'"partition":0' in line else line for line in exported]
    report = verify_export(changed, public_key)
    assert report.exit_code == 1
    assert (report.problems[0].partition, report.problems[0].seq) == (0, 2)
    assert verify_export([line for line in exported if b'"seq":5' not in line],
                         public_key).exit_code == 1  # cut tail behind the checkpoint


async def test_query_export_and_offline_verify_commands(
    stack: Stack, settings: Settings, prefix: str, role: Callable[[str], aioredis.Redis],
    tmp_path: Path
) -> None:
    sink = RedisAuditSink(role("sink"), prefix)
    sink.add(AuditRecord(0, 0, b"alice", decision(0, "alice")))
    sink.add(AuditRecord(1, 0, b"bob", decision(1, "bob", "deny", "ttl-max", minutes=1)))
    await sink.flush()
    await sign_all(settings, prefix, role("notary"))

    jsonl = cli(stack, prefix, "query", "--action", "deny", "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    [line] = jsonl.stdout.splitlines()
    found = orjson.loads(line)
    assert (found["partition"], found["seq"], found["decision"]["subject"]["id"]) == \
        (1, 0, "bob")
    table = cli(stack, prefix, "query", "--since", "2026-11-23T10:00:30Z")
    assert table.returncode == 0, table.stderr
    assert "bob" in table.stdout
    assert "alice" not in table.stdout
    assert "1 entry" in table.stderr

    out = tmp_path / "audit.jsonl"
    exported = cli(stack, prefix, "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    offline = cli(stack, prefix, "verify", "--export", str(out), "--public-key",
                  stack.env["JITWATCH_AUDIT_VERIFY_KEY_FILE"])
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "ok: partition 1: 1 entry, 1 checkpoint," in offline.stdout

    # A failed export leaves nothing that could pass for one, and says what to set.
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    failed = cli(stack, prefix, "export", "--out", str(tmp_path / "failed.jsonl"),
                 JITWATCH_VERIFIER_REDIS_PASSWORD_FILE=str(wrong))
    assert failed.returncode == 2, failed.stderr
    assert "JITWATCH_VERIFIER_REDIS_PASSWORD_FILE" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert sorted(os.listdir(tmp_path)) == ["audit.jsonl", "wrong.password"]


# ---------------------------------------------------------------- least privilege

needs_acl = pytest.mark.skipif(not REDIS_ADMIN_USER and not os.environ.get("CI"),
                               reason="the stack's Redis ACL users are not configured")


@needs_acl
@pytest.mark.parametrize("user", ["sink", "notary", "verifier"])
async def test_forbidden_commands_get_noperm(
    prefix: str, role: Callable[[str], aioredis.Redis], redis_client: aioredis.Redis,
    user: str
) -> None:
    sink = RedisAuditSink(role("sink"), prefix)
    await fill(sink, 3)
    client = role(user)
    chain = stream_key(prefix, 0)
    forbidden: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.delete(chain), lambda: client.xdel(chain, "0-1"),
        lambda: client.xtrim(chain, maxlen=1), lambda: client.flushall(),
        lambda: client.config_get("*"), lambda: client.config_set("appendonly", "no"),
        lambda: client.acl_list(), lambda: client.keys("*"),
    ]
    for attempt in forbidden:
        with pytest.raises(NoPermissionError):
            await attempt()
    assert await redis_client.xlen(chain) == 3


@needs_acl
async def test_role_boundaries(
    prefix: str, role: Callable[[str], aioredis.Redis]
) -> None:
    sink, notary, verifier = role("sink"), role("notary"), role("verifier")
    # The sink appends by FCALL of the loaded function: it may load or run no script of its
    # own, and a transaction is checked command by command, so it cannot smuggle a DEL in.
    with pytest.raises(NoPermissionError):
        await sink.script_load("return redis.call('DEL', KEYS[1])")
    async with sink.pipeline(transaction=True) as transaction:
        transaction.xlen(stream_key(prefix, 0)).delete(stream_key(prefix, 0))
        with pytest.raises((NoPermissionError, ExecAbortError)):
            await transaction.execute()
    with pytest.raises(NoPermissionError):
        await sink.xadd(checkpoint_key(prefix, 0), {"payload": b"{}", "sig": b""})
    with pytest.raises(NoPermissionError):
        await notary.xadd(stream_key(prefix, 0), {"seq": b"0"})
    with pytest.raises(NoPermissionError):
        await verifier.xadd(stream_key(prefix, 0), {"seq": b"0"})
    with pytest.raises(NoPermissionError):
        await verifier.zadd(f"{prefix}:ix:subject:x", {"p": 1})
    assert await notary.xadd(checkpoint_key(prefix, 0), {"payload": b"{}", "sig": b""})


@needs_acl
async def test_the_default_user_is_disabled() -> None:
    anonymous = aioredis.Redis.from_url(REDIS_URL)
    try:
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.ping()
    finally:
        await anonymous.aclose()
