"""The enforcer as a least-privilege identity, on a broker with SASL/SCRAM and ACLs.

Every principal of ops/principals.toml is probed for every action on every topic and group
of the session: what the file allows must work, everything else must be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from streams.kafka.acls import AclBinding, acl_bindings, load_principals
from streams.settings import load_settings
from tests.integration.auth_stack import (
    PRINCIPALS,
    AuthStack,
    auth_stack_session,
    can_commit,
    can_create,
    can_read,
    can_write,
    client_options,
    create_as_admin,
)
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    yield from auth_stack_session(tmp_path_factory.mktemp("auth"))


def _bindings(auth: AuthStack) -> list[AclBinding]:
    settings = load_settings(
        app_id=auth.app_id, topic_requests=auth.name("topic_requests"),
        topic_sessions=auth.name("topic_sessions"), topic_decisions=auth.name("topic_decisions"),
        topic_deadletter=auth.name("topic_deadletter"), topic_notices=auth.name("topic_notices"),
        audit_group=auth.name("audit_group"))
    return acl_bindings(load_principals(REPO / "ops" / "principals.toml"), settings.topics,
                        settings.audit.audit_group)


def _allowed(bindings: list[AclBinding], user: str, resource: str, name: str,
             operation: str) -> bool:
    return any(b.principal == f"User:{user}" and b.resource == resource
               and b.operation == operation
               and (b.name == name if b.pattern == "literal" else name.startswith(b.name))
               for b in bindings)


async def test_acl_matrix_every_principal_can_do_its_job_and_nothing_more(
        auth: AuthStack) -> None:
    bindings = _bindings(auth)
    topics = [auth.name(f"topic_{key}") for key in
              ("requests", "sessions", "decisions", "deadletter", "notices")]
    topics += [f"{auth.app_id}-commands", f"{auth.app_id}-grants-changelog"]
    await create_as_admin(topics[-1], partitions=2)  # the table's changelog, as faust makes it
    for topic in topics:  # one record on partition 0 of each, for the read probes
        assert await can_write("admin", topic)
    groups = [auth.app_id, auth.name("audit_group"), f"intruder-{auth.run}"]

    checked: list[str] = []
    wrong: list[str] = []

    def record(user: str, action: str, target: str, allowed: bool, did: bool) -> None:
        checked.append(f"{user} {action} {target}: {'allowed' if did else 'refused'}")
        if allowed != did:
            wrong.append(f"{user} {action} {target}: expected "
                         f"{'allowed' if allowed else 'refused'}, was "
                         f"{'allowed' if did else 'refused'}")

    for user in PRINCIPALS:
        readable = [t for t in topics if _allowed(bindings, user, "topic", t, "read")]
        for topic in topics:
            record(user, "write", topic, _allowed(bindings, user, "topic", topic, "write"),
                   await can_write(user, topic))
            record(user, "read", topic, topic in readable, await can_read(user, topic))
        for group in groups:
            topic = readable[0] if readable else topics[0]
            expected = bool(readable) and _allowed(bindings, user, "group", group, "read")
            record(user, "commit", f"{group} on {topic}", expected,
                   await can_commit(user, group, topic))
        for topic in (f"{auth.app_id}-probe-{user}", f"intruder-{auth.run}-{user}"):
            record(user, "create", topic, _allowed(bindings, user, "topic", topic, "create"),
                   await can_create(user, topic))

    refused = sum(line.endswith("refused") for line in checked)
    assert not wrong, "ACL matrix differs from ops/principals.toml:\n  " + "\n  ".join(wrong)
    # The matrix is mostly refusals: least privilege, not a smoke test.
    assert refused > 2 * (len(checked) - refused), "\n".join(checked)


async def test_unauthenticated_and_wrong_password_clients_are_refused(auth: AuthStack) -> None:
    wrong = client_options("watcher", secret="not-the-password")  # noqa: S106 - on purpose
    for options in (client_options(None), wrong):
        producer = AIOKafkaProducer(**options, request_timeout_ms=5000)
        with pytest.raises(KafkaConnectionError):
            await producer.start()
        await producer.stop()


def test_a_principal_cannot_apply_acls_or_describe_them(auth: AuthStack,
                                                         tmp_path: Path) -> None:
    done = auth.jitwatch("acls", "apply", user="watcher")
    assert done.returncode != 0
    assert "refused" in done.stderr


@pytest.fixture
def clean_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    """Names of its own: the matrix leaves probe records in its session's topics."""
    yield from auth_stack_session(tmp_path_factory.mktemp("auth-clean"))


async def test_worker_as_least_privilege_watcher_signed_reviews_and_policy_control(
        clean_auth: AuthStack, tmp_path: Path) -> None:
    """The whole pipeline, each part as its own principal: upstream publishes, the watcher
    decides with a signed policy, the audit sink appends, the SIEM reads. A forged approval
    is denied and locks the request until released; a tampered policy is refused with the
    old one kept; no secret leaks."""
    import asyncio

    import orjson

    from streams.audit import stream_key
    from streams.control.keys import read_private_key
    from streams.control.policy import sign_policy
    from tests.factories import raw_event, raw_request
    from tests.integration.auth_stack import PRINCIPALS, password, read_all
    from tests.integration.conftest import redis_admin
    from tests.keys import policy_keys_toml, signed

    # A signer key, the signers file, and a signed policy with alice's reviewer key.
    signer_key = tmp_path / "signer.key"
    keygen = clean_auth.jitwatch("keygen", "--out", str(signer_key))
    assert keygen.returncode == 0, keygen.stderr
    signers = tmp_path / "signers.toml"
    signers.write_text(f'[signers.sec-1]\nsigner = "security-team"\n{keygen.stdout}')
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "auth-v1"\n[[defaults.step_up.reviewers]]\nenvs = ["prod"]\n'
                      'ids = ["alice@example.com"]\n'
                      + policy_keys_toml("defaults.step_up", ["alice@example.com"]))
    sign_policy(policy, "sec-1", read_private_key(signer_key))

    env = {"JITWATCH_POLICY_FILE": str(policy), "JITWATCH_POLICY_SIGNERS_FILE": str(signers),
           "JITWATCH_POLICY_POLL_S": "0.5"}
    worker_log, sink_log = tmp_path / "worker.log", tmp_path / "sink.log"
    clean_auth.start("worker", worker_log, "watcher", **env)
    clean_auth.start("audit-sink", sink_log, "audit")
    decisions = clean_auth.name("topic_decisions")

    def loads(outcome: str) -> Any:
        return lambda found: any(r.get("schema") == "jit.policy-load/v1"
                                 and r["outcome"] == outcome for r in found)

    records = await read_all("siem", decisions, loads("loaded"))
    loaded = next(r for r in records if r.get("outcome") == "loaded")
    assert loaded["new"]["signer"] == "security-team"
    v1_sha = loaded["new"]["sha256"]

    subject = f"dev-{clean_auth.run}@example.com"
    review = {"subject": subject, "tenant": "default", "request_id": "r-1",
              "reviewer": {"id": "alice@example.com"}, "outcome": "approved"}
    request = raw_request("r-1", [{"id": "db/orders", "env": "prod", "sensitivity": "high"}],
                          subject=subject, ticket="OPS-1")
    # Reviews are signed over the request they decide (jit.review-signature/v2).
    forged = signed(raw_event("request.reviewed", event_id="e-2", t=60, **review),
                    request=request) | {"event_id": "e-2b"}  # signature moved
    # The forgery is denied (review-signature) and locks nothing (issue H): the genuine
    # approval that follows grants.
    genuine = signed(raw_event("request.reviewed", event_id="e-3", t=120, **review),
                     request=request)
    producer = AIOKafkaProducer(**client_options("upstream"), acks="all")
    await producer.start()
    try:
        for event in (request, forged, genuine):
            event["subject"] = {"id": subject}
            await producer.send_and_wait(clean_auth.name("topic_requests"), orjson.dumps(event),
                                         key=subject.encode())
        verdicts = [r for r in await read_all(
            "siem", decisions, lambda found: sum(r.get("subject", {}).get("id") == subject
                                                 for r in found) >= 3)
            if r.get("subject", {}).get("id") == subject]
        assert [(v["action"], v["rule"]["id"]) for v in verdicts] == [
            ("escalate", "step-up"), ("deny", "review-signature"),
            ("approve", "review-approved")]
        assert all(v["policy"]["sha256"] == v1_sha for v in verdicts)

        # whoami: who the watcher is, what it may touch, the policy, the audit heads.
        whoami = clean_auth.jitwatch("whoami", "--json", user="watcher", **env)
        assert whoami.returncode == 0, whoami.stderr
        found = orjson.loads(whoami.stdout)
        assert found["principal"] == "User:watcher"
        assert f"User:watcher may read topic {clean_auth.name('topic_requests')}" in \
            found["acls"]["bindings"]
        assert not any("siem" in line or "audit" in line for line in found["acls"]["bindings"])
        assert (found["policy"]["sha256"], found["policy"]["signer"]) == (v1_sha,
                                                                          "security-team")
        assert "error" not in found["audit_heads"], found["audit_heads"]
        assert password("watcher") not in whoami.stdout + whoami.stderr
        # The policy the running worker enforces, from its load record in the audit trail
        # (the sink appends it shortly after the worker starts).
        for _ in range(30):
            if found["policy_loads"]:
                break
            await asyncio.sleep(0.5)
            found = orjson.loads(clean_auth.jitwatch("whoami", "--json", user="watcher",
                                                     **env).stdout)
        assert [(load["outcome"], load["sha256"]) for load in found["policy_loads"]] == [
            ("loaded", v1_sha)]

        # Tamper with the policy: refused, recorded, and v1 stays in force.
        policy.write_text(policy.read_text().replace("auth-v1", "auth-v2-evil"))
        refused = next(r for r in await read_all("siem", decisions, loads("refused"))
                   if r.get("outcome") == "refused")
        assert refused["old"]["sha256"] == v1_sha
        assert "does not verify" in refused["reason"]
        later = raw_request("r-2", [{"id": "db/x", "env": "dev", "sensitivity": "low"}],
                            subject=subject, t=180)
        later["subject"] = {"id": subject}
        await producer.send_and_wait(clean_auth.name("topic_requests"), orjson.dumps(later),
                                     key=subject.encode())
    finally:
        await producer.stop()
    found = await read_all("siem", decisions, lambda found: any(
        r.get("request_id") == "r-2" for r in found))
    after = next(r for r in found if r.get("request_id") == "r-2")
    assert (after["action"], after["policy"]["sha256"]) == ("approve", v1_sha)

    # The audit sink (its own principal) appended the verdicts to Redis.
    client = redis_admin()
    keys = [stream_key(clean_auth.name("audit_key_prefix"), partition) for partition in range(2)]
    try:
        for _ in range(120):  # the sink runs on its own; wait for it, not for a time
            if sum([await client.xlen(key) for key in keys]) >= 4:
                break
            await asyncio.sleep(0.5)
        assert sum([await client.xlen(key) for key in keys]) >= 4
    finally:
        await client.aclose()

    # No secret in any log or decision.
    everything = (worker_log.read_bytes() + sink_log.read_bytes()
                  + b"".join(orjson.dumps(r) for r in found))
    for user in ("admin", *PRINCIPALS):
        assert password(user).encode() not in everything, f"{user}'s password leaked"


async def test_audit_verify_against_kafka_reads_the_topic_as_a_sasl_principal(
        auth: AuthStack, tmp_path: Path) -> None:
    """`jitwatch audit verify --against-kafka` takes the JITWATCH_KAFKA_* security settings:
    as the SIEM (read on the decisions topic, no consumer group) it compares the chain with
    the topic record for record; unauthenticated it cannot."""
    import time

    import orjson
    from aiokafka import AIOKafkaConsumer

    from streams.audit import AuditRecord, RedisAuditSink
    from streams.audit.keys import redis_for
    from tests.integration.auth_stack import password
    from tests.integration.conftest import assign_from_start

    decisions = auth.name("topic_decisions")
    producer = AIOKafkaProducer(**client_options("admin"), acks="all")
    await producer.start()
    try:
        for n in range(6):
            await producer.send_and_wait(decisions, orjson.dumps({
                "decision_id": f"d-{auth.run}-{n}", "action": "deny", "rule": {"id": "t"},
                "subject": {"id": "alice"}, "at": "2026-11-23T10:00:00Z"}),
                key=b"alice", partition=n % 2)
    finally:
        await producer.stop()

    # The chain of whatever the topic holds (the matrix's probes too), as the sink's user.
    sink_client = redis_for(load_settings().audit, "sink")
    sink = RedisAuditSink(sink_client, auth.name("audit_key_prefix"))
    consumer = AIOKafkaConsumer(**client_options("admin"), enable_auto_commit=False)
    await consumer.start()
    try:
        await assign_from_start(consumer, decisions, time.monotonic() + 60)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for tp, messages in (await consumer.getmany(timeout_ms=300)).items():
                for message in messages:
                    sink.add(AuditRecord(tp.partition, message.offset, message.key,
                                         message.value))
        assert await sink.flush() >= 6
    finally:
        await consumer.stop()
        await sink_client.aclose()

    keys = tmp_path / "keys"
    assert auth.jitwatch("audit", "keygen", "--out", str(keys)).returncode == 0
    # No notary signs here (what is shown is reading the topic as a SASL principal), so
    # an unsigned chain is a note, not exit 2 (issue I).
    args = ("audit", "verify", "--against-kafka", "--allow-unsigned", "--public-key",
            str(keys / "notary.pub"))
    done = auth.jitwatch(*args, user="siem")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("equal to the topic's") == 2, done.stdout
    assert password("siem") not in done.stdout + done.stderr
    anonymous = auth.jitwatch(*args, user="siem", JITWATCH_KAFKA_SECURITY_PROTOCOL="PLAINTEXT",
                              timeout=180)
    assert anonymous.returncode == 2
    # Which topic it fails on first (the checkpoint anchor or the decisions) is not the
    # point: that it says it cannot, and names the settings to check.
    assert "cannot read" in anonymous.stderr or "cannot reach" in anonymous.stderr, \
        anonymous.stderr
    assert "Traceback" not in anonymous.stderr
