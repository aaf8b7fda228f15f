"""The SASL/SCRAM broker of ``ops/stack up --auth`` (started by ``ops/test``) for test_auth.

Its address is ``JITWATCH_AUTH_KAFKA_BOOTSTRAP``, the generated passwords sit in
``JITWATCH_AUTH_STACK_SECRETS/<principal>.password``. Without it these tests skip on a
laptop and fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.conftest import (
    REDIS_URL,
    REPO,
    _reachable,
    assign_from_start,
    stop_all,
)
from tests.requires import unavailable

AUTH_BOOTSTRAP = os.environ.get("JITWATCH_AUTH_KAFKA_BOOTSTRAP", "")
SECRETS = Path(os.environ.get("JITWATCH_AUTH_STACK_SECRETS", REPO / ".stack-auth" / "secrets"))
PRINCIPALS = ("watcher", "audit", "upstream", "siem", "ocsf", "notifier")


def require_auth_stack() -> None:
    """Skip (or fail under CI) when the SASL broker is not there."""
    if AUTH_BOOTSTRAP and _reachable(AUTH_BOOTSTRAP) and (SECRETS / "admin.password").is_file():
        return
    message = ("no SASL broker: set JITWATCH_AUTH_KAFKA_BOOTSTRAP and JITWATCH_AUTH_STACK_SECRETS "
               "(ops/test starts one with `ops/stack up --auth`)")
    unavailable(message)


def password(user: str) -> str:
    """A principal's generated password (read from the stack's secrets directory)."""
    return (SECRETS / f"{user}.password").read_text().strip()


def client_options(user: str | None, secret: str | None = None) -> dict[str, Any]:
    """aiokafka options for ``user`` (None: an unauthenticated PLAINTEXT client)."""
    if user is None:
        return {"bootstrap_servers": AUTH_BOOTSTRAP}
    return {"bootstrap_servers": AUTH_BOOTSTRAP, "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user,
            "sasl_plain_password": secret if secret is not None else password(user)}


def principal_env(user: str) -> dict[str, str]:
    """JITWATCH_* settings that make a jitwatch process authenticate as ``user``."""
    return {"JITWATCH_KAFKA_BOOTSTRAP": AUTH_BOOTSTRAP,
            "JITWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "JITWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "JITWATCH_KAFKA_SASL_USERNAME": user,
            "JITWATCH_KAFKA_SASL_PASSWORD_FILE": str(SECRETS / f"{user}.password")}


@dataclass
class AuthStack:
    """One test session's names on the SASL broker."""

    run: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def name(self, key: str) -> str:
        return self.env[f"JITWATCH_{key.upper()}"]

    @property
    def app_id(self) -> str:
        return self.env["JITWATCH_APP_ID"]

    def jitwatch(self, *args: str, user: str = "admin", timeout: float = 120,
                 **env: str) -> subprocess.CompletedProcess[str]:
        """Run a jitwatch command to completion as ``user``."""
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args], cwd=REPO,
            env={**self.env, **principal_env(user), **env}, capture_output=True, text=True,
            timeout=timeout, check=False)

    def start(self, command: str, log: Path, user: str, *args: str,
              **env: str) -> subprocess.Popen[bytes]:
        """Start a jitwatch command in the background as ``user``."""
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", command, *args], cwd=REPO,
            env={**self.env, **principal_env(user), **env}, stdout=log.open("wb"),
            stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process


def auth_stack_session(tmp: Path) -> Iterator[AuthStack]:
    """Topics created and the principals file's ACLs applied, both as admin."""
    require_auth_stack()
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "JITWATCH_REDIS_URL": REDIS_URL,
        "JITWATCH_APP_ID": f"jw-auth-{run}",
        "JITWATCH_TOPIC_REQUESTS": f"auth-{run}.requests",
        "JITWATCH_TOPIC_SESSIONS": f"auth-{run}.sessions",
        "JITWATCH_TOPIC_DECISIONS": f"auth-{run}.decisions",
        "JITWATCH_TOPIC_DEADLETTER": f"auth-{run}.deadletter",
        "JITWATCH_TOPIC_DECISIONS_OCSF": f"auth-{run}.decisions-ocsf",
        "JITWATCH_TOPIC_NOTICES": f"auth-{run}.notices",
        "JITWATCH_TOPIC_PARTITIONS": "2",
        "JITWATCH_AUDIT_GROUP": f"jw-auth-audit-{run}",
        "JITWATCH_AUDIT_KEY_PREFIX": f"jitwatch:auth-{run}:audit",
        "JITWATCH_DATA_DIR": str(tmp / "data"),
        "JITWATCH_STANDBY_REPLICAS": "0",
        "JITWATCH_LOG_LEVEL": "info",
        # Several workers, sinks and notaries at once, and other runs on the machine: each
        # serves its metrics and probes on a free port of its own (issue K).
        "JITWATCH_WEB_PORT": "0",
        "JITWATCH_AUDIT_WEB_PORT": "0",
        "JITWATCH_NOTARY_WEB_PORT": "0",
    }
    session = AuthStack(run=run, env=env)
    for command in (("topics", "create"), ("acls", "apply")):
        # A fresh broker may describe a just-created topic with 0 partitions: ask again.
        for _ in range(5):
            done = session.jitwatch(*command)
            if done.returncode == 0:
                break
        assert done.returncode == 0, done.stderr
    yield session
    stop_all(session.processes)


# ---------------------------------------------------------------- probes: True when allowed

async def can_write(user: str, topic: str) -> bool:
    """Produce one record to partition 0 of ``topic`` as ``user``."""
    producer = AIOKafkaProducer(**client_options(user), request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"probe", key=b"probe", partition=0)
    except Exception as exc:  # noqa: BLE001 - any refusal counts; the message is kept
        # PT017 is off below: a probe, not a test; a refusal must be an authorization error
        assert "Authorization" in type(exc).__name__, (  # noqa: PT017
            f"{user} write {topic}: {exc!r}")
        return False
    finally:
        await producer.stop()
    return True


async def can_read(user: str, topic: str, wait_s: float = 4.0) -> bool:
    """Fetch the probe record admin wrote to partition 0 of ``topic`` (no group)."""
    consumer = AIOKafkaConsumer(**client_options(user), enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    try:
        consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        if topic in consumer._client.cluster.unauthorized_topics:
            return False  # the broker does not even describe it to this principal
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(tp, timeout_ms=300)
            if batches.get(tp):
                return True
            if topic in consumer._client.cluster.unauthorized_topics:
                return False  # the broker did not even describe it to this principal
    except Exception as exc:  # noqa: BLE001 - any refusal counts; the message is kept
        # PT017 is off below: a probe, not a test; a refusal must be an authorization error
        assert "Authorization" in type(exc).__name__, (  # noqa: PT017
            f"{user} read {topic}: {exc!r}")
        return False
    finally:
        await consumer.stop()
    return False


async def can_commit(user: str, group: str, topic: str) -> bool:
    """Commit an offset of ``topic`` for consumer group ``group`` as ``user``."""
    from aiokafka.structs import OffsetAndMetadata

    consumer = AIOKafkaConsumer(**client_options(user), group_id=group,
                                enable_auto_commit=False, request_timeout_ms=10_000)
    tp = TopicPartition(topic, 0)
    try:
        await consumer.start()
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(0, "")})
    except Exception as exc:  # noqa: BLE001 - any refusal counts; the message is kept
        assert "Authorization" in type(exc).__name__  # noqa: PT017 - a probe, not a test, f"{user} commit {group}: {exc!r}"
        return False
    finally:
        await consumer.stop()
    return True


async def can_create(user: str, topic: str) -> bool:
    """Create ``topic`` as ``user`` (admin deletes it again)."""
    from aiokafka.admin import NewTopic

    admin = AIOKafkaAdminClient(**client_options(user))
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, 1, 1)])
        codes = [error[1] for error in response.topic_errors]
    finally:
        await admin.close()
    assert codes in ([0], [29]), f"{user} create {topic}: {response}"
    return codes == [0]


async def create_as_admin(topic: str, partitions: int) -> None:
    """Create ``topic`` unless it exists, as the admin principal."""
    from aiokafka.admin import NewTopic

    admin = AIOKafkaAdminClient(**client_options("admin"))
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    assert [error[1] for error in response.topic_errors] in ([0], [36]), response


async def read_all(user: str, topic: str, until: Any, timeout_s: float = 90.0) -> list[Any]:
    """Records of ``topic`` (decoded JSON) as ``user``, from the start, until ``until(found)``."""
    import orjson

    consumer = AIOKafkaConsumer(**client_options(user), enable_auto_commit=False)
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        await assign_from_start(consumer, topic, deadline)
        while not until(found) and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                found.extend(orjson.loads(message.value) for message in messages
                             if message.value != b"probe")
    finally:
        await consumer.stop()
    assert until(found), f"timed out on {topic}; found {found}"
    return found
