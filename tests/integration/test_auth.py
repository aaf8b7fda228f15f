"""The enforcer as a least-privilege identity, on a broker with SASL/SCRAM and ACLs.

Every principal of ops/principals.toml is probed for every action on every topic and group
of the session: what the file allows must work, everything else must be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from streams.principals import AclBinding, acl_bindings, load_principals
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
        topic_deadletter=auth.name("topic_deadletter"), audit_group=auth.name("audit_group"))
    return acl_bindings(load_principals(REPO / "ops" / "principals.toml"), settings)


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
              ("requests", "sessions", "decisions", "deadletter")]
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
