"""1% poison records among good ones (issue E): bad JSON, wrong types, a null key, an
oversized value and an unknown type. Each lands in the dead-letter topic with the
contract's headers and its bytes unchanged, none yields any verdict (so no approve),
and everything else is decided exactly as simulate decides it.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.faults import harness
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

MAX_EVENT_BYTES = 64 * 1024  # the worker's default JITWATCH_MAX_EVENT_BYTES


def _poison(kind: int, good: dict[str, Any], number: int) -> tuple[bytes | None, bytes, str]:
    """One poison record made from a good event: (key, value, expected error.class)."""
    event = {**good, "event_id": f"poison-{number}", "request_id": f"poison-{number}"}
    key = event["subject"]["id"].encode()
    if kind == 0:  # bad JSON: cut off mid-object
        return key, orjson.dumps(event)[:-7], "invalid-json"
    if kind == 1:  # wrong types in fields every event has
        return key, orjson.dumps({**event, "event_id": 7, "at": 1795428466,
                                  "tenant": ["default"]}), "schema-violation"
    if kind == 2:  # null key on an otherwise valid event
        return None, orjson.dumps(event), "missing-key"
    if kind == 3:  # oversized, otherwise valid (unknown fields are allowed)
        return key, orjson.dumps({**event, "padding": "x" * MAX_EVENT_BYTES}), "oversized"
    return key, orjson.dumps({**event, "type": "request.escalated"}), "schema-violation"


async def test_poison_records_are_dead_lettered_and_never_approved(
        stack: Stack, logs: Path, tmp_path: Path) -> None:
    count = harness.env_int("JITWATCH_FAULTS_EVENTS", 4000)
    started = time.monotonic()
    events = harness.load(count, uuid.uuid4().hex[:6], seed=13)
    expectation = harness.expected(events)
    records: list[tuple[bytes | None, bytes]] = []
    poison: dict[int, str] = {}  # index in records -> expected error.class
    for index, record in enumerate(harness.event_records(events)):
        records.append(record)
        if index % 99 == 98:  # one in a hundred records
            key, value, error_class = _poison(len(poison) % 5, events[index], len(poison))
            poison[len(records)] = error_class
            records.append((key, value))
    with harness.scenario_stack(stack, "poison", tmp_path, logs) as (run, log_dir):
        placed = await harness.publish(run, records)
        worker = run.start("worker", log_dir)
        await harness.workers_drained(run)
        assert worker.poll() is None, f"worker exited; see {log_dir}"
        dead: dict[tuple[int, int], Any] = {}
        for message in await harness.read_all(run.deadletter):
            headers = {name: value.decode() for name, value in message.headers}
            dead[(int(headers["source.partition"]), int(headers["source.offset"]))] = (
                message, headers)
        verdicts = [orjson.loads(m.value) for m in await harness.read_all(run.decisions)]
        outcome = await harness.check(run, events, expectation)

    bad_coordinates = {placed[index] for index in poison}
    for index, error_class in poison.items():
        where = placed[index]
        assert where in dead, f"poison record {index} ({error_class}) at {where} not dead-lettered"
        message, headers = dead[where]
        assert headers["source.topic"] == run.requests
        assert headers["error.class"] == error_class, headers
        assert headers["error.message"], "the reason is given"
        assert (message.key, message.value) == records[index], "bytes kept unchanged"
    stray = sorted(set(dead) - bad_coordinates)
    outcome.lost += len(stray)
    if stray:
        outcome.problems.append(f"good records dead-lettered: {stray[:10]}")
    answered = [v for v in verdicts
                if (v["cause"]["partition"], v["cause"]["offset"]) in bad_coordinates
                and v["cause"]["topic"] == run.requests]
    outcome.duplicates += len(answered)
    if answered:
        outcome.problems.append(f"verdicts from poison records: {answered[:5]}")
    assert not any(v["action"] == "approve" for v in answered), "an approve from poison"
    harness.finish("poison", outcome, events=len(records), faults=len(poison), started=started,
           detail=f"{len(dead)} dead letters with headers")
