"""``jitwatch siem`` as its own principal (``ocsf`` in ops/principals.toml) on the SASL
broker: its ACLs are enough to read the verdicts in its group and write them as OCSF, and
a SIEM's principal reads them there."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.auth_stack import AuthStack, auth_stack_session, client_options, read_all
from tests.paths import REPO
from tests.streams.engine.test_ocsf import _valid

pytestmark = pytest.mark.integration

GOLDEN = REPO / "tests" / "golden" / "post-review-done" / "decisions.jsonl"


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    yield from auth_stack_session(tmp_path_factory.mktemp("auth-siem"))


async def test_siem_principal_reads_its_group_and_writes_ocsf(auth: AuthStack,
                                                              tmp_path: Path) -> None:
    decisions = GOLDEN.read_bytes().splitlines()
    producer = AIOKafkaProducer(**client_options("admin"), acks="all")
    await producer.start()
    try:  # the verdicts as a worker would have written them (admin stands in for it)
        for line in decisions:
            key = orjson.loads(line)["subject"]["id"].encode()
            await producer.send_and_wait(auth.name("topic_decisions"), line, key=key)
    finally:
        await producer.stop()
    log = tmp_path / "siem.log"
    siem = auth.start("siem", log, "ocsf")
    try:
        def enough(found: list[Any]) -> bool:
            return len(found) >= len(decisions)

        events = await read_all("siem", auth.name("topic_decisions_ocsf"), enough)
    finally:
        siem.terminate()
        assert await asyncio.to_thread(siem.wait, 60) == 0, log.read_text()
    assert sorted(e["metadata"]["uid"] for e in events) == sorted(
        orjson.loads(line)["decision_id"] for line in decisions)
    for event in events:
        _valid(event)
    assert "Traceback" not in log.read_text()


def test_siem_as_another_principal_says_what_it_may_not(auth: AuthStack) -> None:
    done = auth.jitwatch("siem", user="siem", timeout=120)  # a SIEM's reader: no group
    assert done.returncode == 2, done.stderr
    assert "siem is not allowed to" in done.stderr
    assert auth.name("topic_decisions_ocsf") in done.stderr
    assert "Traceback" not in done.stderr
