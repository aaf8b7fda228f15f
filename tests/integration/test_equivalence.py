"""The stream decides exactly what simulate decides for the same input (issue C's oracle).

Events are stamped in real time and published at their own time, as in live operation, so
the stream's expiry ticks fire between them as they would in production. The stream decides
each at the time the broker appended it (issue H), so simulate is given those times
(``broker_time``), read from the produce responses.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson
import pytest

from schemas._base import format_time
from schemas.policy import parse_policy
from streams.engine.codec import BROKER_TIME
from tests.integration.conftest import Producer, Stack, read_topic
from tests.oracle import compare, simulated
from tests.paths import REPO

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def scenario(start: datetime, tag: str, seed: int = 11,
             sessions: bool = True) -> list[dict[str, Any]]:
    """About 120 events over 12 s for 8 subjects: requests with 1 to 4 s lifetimes (so
    grants expire during the run), caps, env conflicts, withdrawals and, with ``sessions``,
    task completions on the sessions topic."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    approved: dict[str, list[str]] = {}
    for number in range(120):
        at = start + timedelta(milliseconds=100 * number)
        subject = f"eq-{tag}-{rng.randrange(8)}"
        base = {"event_id": f"e-{tag}-{number}", "at": _stamp(at), "tenant": "default",
                "subject": {"id": subject}}
        roll = rng.random()
        earlier = approved.get(subject, [])
        if roll < 0.75 or not earlier:
            request_id = f"r-{tag}-{number}"
            earlier.append(request_id)
            approved[subject] = earlier
            resources_ = [{"id": f"res-{rng.randrange(6)}",
                           "env": rng.choice(["prod", "prod", "research", "staging"]),
                           "sensitivity": "low"} for _ in range(rng.randint(1, 2))]
            events.append({**base, "type": "request.created", "request_id": request_id,
                           "resources": resources_, "ttl_s": rng.randint(1, 4),
                           "reason": "equivalence"})
        elif roll < 0.9 or not sessions:
            events.append({**base, "type": "request.withdrawn",
                           "request_id": rng.choice(earlier)})
        else:
            events.append({**base, "type": "task.completed", "request_id": rng.choice(earlier)})
    return events


async def publish_paced(producer: Producer, stack: Stack, events: list[dict[str, Any]]
                        ) -> dict[str, datetime]:
    """Send each event at its own time, to the topic the contract names for its type;
    returns each event id's broker time (LogAppendTime), the time the stream decides it at
    (issue H)."""
    sessions = stack.env["JITWATCH_TOPIC_SESSIONS"]
    received: dict[str, datetime] = {}
    for event in events:
        delay = (datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
                 - datetime.now(UTC)).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        topic = sessions if event["type"] == "task.completed" else producer.topic
        partition, offset = await producer.raw_to(topic, event["subject"]["id"].encode(),
                                                  orjson.dumps(event))
        received[event["event_id"]] = producer.broker_time(partition, offset, topic)
    return received


def at_broker_times(events: list[dict[str, Any]], received: dict[str, datetime]
                    ) -> list[dict[str, Any]]:
    """The replay input the stream decided: each event with its ``broker_time``, in
    broker-time order (stable), as ``simulate`` reads a file exported from the topics."""
    ordered = sorted(events, key=lambda event: received[event["event_id"]])
    return [{**event, BROKER_TIME: format_time(received[event["event_id"]])}
            for event in ordered]


async def assert_stream_equals_simulate(stack: Stack, events: list[dict[str, Any]], tag: str,
                                        until: datetime, received: dict[str, datetime]
                                        ) -> None:
    """Compare the stream's decisions about this run's subjects with simulate's, fed the
    broker times the stream decided on (``received``, from :func:`publish_paced`)."""
    expected = simulated(at_broker_times(events, received), POLICY, until=until)
    await assert_stream_equals(stack, expected, tag)
    assert sum(d["rule"]["id"] == "ttl-expired" for d in expected) > 10, "scenario too tame"


async def assert_stream_equals(stack: Stack, expected: list[dict[str, Any]], tag: str) -> None:
    """Compare the stream's decisions about this run's subjects with ``expected``."""
    stream = await read_topic(
        stack.decisions,
        lambda m: (d := orjson.loads(m.value)) and (d if d["subject"]["id"].startswith(
            f"eq-{tag}-") else None),
        len(expected), timeout_s=90)
    report = compare(stream, expected)
    print(report)  # shown with -s: how much was compared
    assert report.equal, str(report)


@pytest.mark.usefixtures("handoff")
async def test_stream_decisions_equal_simulate(stack: Stack, producer: Producer) -> None:
    tag = uuid.uuid4().hex[:6]
    start = datetime.now(UTC) + timedelta(seconds=1)
    events = scenario(start, tag)
    received = await publish_paced(producer, stack, events)
    # Every grant lives at most 4 s; let the stream's ticks (0.5 s grace) fire them all.
    until = start + timedelta(seconds=12 + 4 + 1)
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds() + 2))
    await assert_stream_equals_simulate(stack, events, tag, until, received)


def exported(stack: Stack, tag: str) -> list[dict[str, Any]]:
    """This run's events as ``jitwatch tail --inputs --from-beginning --to-end`` exports
    them from the topics: replay lines carrying each record's broker time."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "tail", "--inputs", "--from-beginning",
         "--to-end"], cwd=REPO, env=stack.env, capture_output=True, timeout=120, check=True)
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    return [line for line in lines if line["subject"]["id"].startswith(f"eq-{tag}-")]


async def test_an_export_of_the_inputs_replays_as_the_stream_decided(
        stack: Stack, producer: Producer) -> None:
    tag = uuid.uuid4().hex[:6]
    start = datetime.now(UTC) + timedelta(seconds=1)
    events = scenario(start, tag, seed=5)[:40]
    received = await publish_paced(producer, stack, events)
    lines = exported(stack, tag)
    assert {line["event_id"]: line[BROKER_TIME] for line in lines} == {
        event_id: format_time(moment) for event_id, moment in received.items()}
    until = start + timedelta(seconds=4 + 4 + 1)
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds() + 2))
    await assert_stream_equals(stack, simulated(lines, POLICY, until=until), tag)
