"""The load the kill, broker-restart and Redis-kill scenarios drive: both input topics,
signed reviews that approve, and deadlines that fall while the faults happen (issue I).

Events are stamped when their segment is made and published at once, so ``at`` is within
the clock skew of the broker time; grants live 5 to 60 s (some the default hour), pending
reviews 45 s, locks 20 s and held sessions 30 s, so expiries, pending timeouts and lock
ends are decided live, on the wall clock, between and during the faults.

The run is a sequence of segments, alternately of the requests topic (requests,
withdrawals, reviews signed by listed and unlisted reviewers, releases) and of the
sessions topic (sessions started, activity, ended, tasks completed; some sessions name a
request its subject makes only in the next segment: a held session). Kafka orders neither
topic against the other and the worker decides a record fetched late at its subject's
later time (README, "Ordering": fail closed, but not what the replay decides), so the
oracle can be exact only where a subject's records of both topics are never in flight
together: a segment is published only once the worker group has committed every input
(and its repartition topic) to the end. Within a segment the faults strike, each once the
group has inputs not yet committed; what was in flight is counted per fault.

A tenth of the subjects (``JITWATCH_FAULTS_MISPLACED_PERCENT``, default 10) are produced on
a partition other than their own, so the worker
forwards them through its repartition topic (``streams/engine/repartition.py``): all of
such a subject's records take the same detour, in the order they were appended.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.policy import parse_policy
from streams.engine.codec import subject_key
from streams.engine.partitioner import partition_of
from tests.integration.conftest import BOOTSTRAP, Stack
from tests.keys import operator_keys_toml, policy_keys_toml, signed, signed_release

__all__ = ["MISPLACED_PERCENT", "POLICY", "POLICY_TEXT", "REVIEWERS", "Fault", "Mixed",
           "drive"]

REVIEWERS = ["alice@example.com", "bob@example.com"]
"""Listed with their test keys in :data:`POLICY_TEXT`: their signed approvals grant."""

_SHORTER = {  # the packaged policy, with what runs out made to run out during the run
    r'^version = ".*"$': 'version = "faults-2026-12-06"',
    r"^pending_ttl_s = 3600 ": "pending_ttl_s = 45 ",
    r"^(\[defaults\.locks\]\n)default_s = 3600 ": r"\1default_s = 20 ",
}
_DEFAULT = resources.files("policy").joinpath("default.toml").read_text()
POLICY_TEXT = _DEFAULT
for _pattern, _replacement in _SHORTER.items():
    POLICY_TEXT, _done = re.subn(_pattern, _replacement, POLICY_TEXT, flags=re.M)
    assert _done == 1, f"policy/default.toml changed: {_pattern} no longer matches"
POLICY_TEXT += ('\n[defaults.sessions]\ngrace_s = 30\n'
                '\n[[defaults.step_up.reviewers]]\nenvs = ["prod", "research", "staging"]\n'
                f"ids = {orjson.dumps(REVIEWERS).decode()}\n"
                + policy_keys_toml("defaults.step_up", REVIEWERS)
                + operator_keys_toml("defaults", ["ops"]))
POLICY = parse_policy(POLICY_TEXT)
"""What the fault scenarios' workers enforce and the oracle replays."""

TTLS = (5, 15, 30, 60, None)

MISPLACED_PERCENT = int(os.environ.get("JITWATCH_FAULTS_MISPLACED_PERCENT") or 10)
"""Subjects (in percent) produced on a partition not their own (0 turns forwarding off)."""


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Mixed:
    """Makes the segments of one run; remembers what each subject asked for and opened."""

    tag: str
    subjects: int
    rng: random.Random
    partitions: int
    made: int = 0
    asked: dict[str, dict[str, Any]] = field(default_factory=dict)
    requested: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    sessions: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    promised: dict[str, list[tuple[str, list[str]]]] = field(
        default_factory=lambda: defaultdict(list))
    """Request ids a session already named before its subject requested them (held)."""

    def _base(self, index: int, at: datetime) -> dict[str, Any]:
        subject: dict[str, Any] = {"id": f"f-{self.tag}-{index}"}
        if index % 5 == 0:
            subject.update(kind="workload", issuer="spiffe://acme.example", attested=True,
                           owner="team-payments")
        self.made += 1
        return {"event_id": f"e-{self.tag}-{self.made}", "at": _stamp(at),
                "tenant": "default", "subject": subject}

    def _resources(self) -> list[dict[str, str]]:
        sensitivity = self.rng.choice(["low", "medium", "medium", "high"])
        return [{"id": f"res-{self.rng.randrange(8)}",
                 "env": self.rng.choice(["prod", "prod", "research", "staging"]),
                 "sensitivity": sensitivity} for _ in range(self.rng.randint(1, 2))]

    def _request(self, base: dict[str, Any], request_id: str,
                 resources_: list[dict[str, str]]) -> dict[str, Any]:
        event = {**base, "type": "request.created", "request_id": request_id,
                 "resources": resources_, "reason": "fault injection", "ticket": "OPS-1",
                 "break_glass": self.rng.random() < 0.01}
        ttl = self.rng.choice(TTLS)
        if ttl is not None:
            event["ttl_s"] = ttl
        self.requested[base["subject"]["id"]].append(request_id)
        self.asked[request_id] = event
        return event

    def requests(self, count: int, start: datetime) -> list[dict[str, Any]]:
        """``count`` events of the requests topic, stamped from ``start`` on."""
        events = []
        for number in range(count):
            index = self.rng.randrange(self.subjects)
            base = self._base(index, start + timedelta(milliseconds=number))
            subject_id = base["subject"]["id"]
            earlier = self.requested[subject_id]
            roll = self.rng.random()
            if self.promised[subject_id]:  # the request a held session waits for
                request_id, resources_ = self.promised[subject_id].pop()
                events.append(self._request(base, request_id, [
                    {"id": name, "env": "staging", "sensitivity": "low"}
                    for name in resources_]))
            elif roll < 0.70 or not earlier:
                events.append(self._request(base, f"r-{self.tag}-{self.made}",
                                            self._resources()))
            elif roll < 0.78:
                events.append({**base, "type": "request.withdrawn",
                               "request_id": self.rng.choice(earlier)})
            elif roll < 0.97:
                request_id = self.rng.choice(earlier[-3:])
                reviewer = self.rng.choice([*REVIEWERS, "carol@example.com"])
                outcome = "approved" if self.rng.random() < 0.85 else "denied"
                events.append(signed({**base, "type": "request.reviewed",
                                      "request_id": request_id, "reviewer": {"id": reviewer},
                                      "outcome": outcome}, request=self.asked[request_id]))
            else:
                events.append(signed_release({**base, "type": "lock.released",
                                              "target": {"subject": subject_id},
                                              "by": "ops"}))
        return events

    def sessions_of(self, count: int, start: datetime) -> list[dict[str, Any]]:
        """``count`` events of the sessions topic, stamped from ``start`` on."""
        events: list[dict[str, Any]] = []
        while len(events) < count:
            index = self.rng.randrange(self.subjects)
            subject_id = f"f-{self.tag}-{index}"
            if not self.requested[subject_id]:
                continue
            base = self._base(index, start + timedelta(milliseconds=len(events)))
            open_ = self.sessions[subject_id]
            roll = self.rng.random()
            if roll < 0.35 or not open_:
                session_id = f"s-{self.tag}-{self.made}"
                if self.rng.random() < 0.05:  # held: its request comes next segment
                    request_id, resource = f"r-{self.tag}-{self.made}", "res-held"
                    self.promised[subject_id].append((request_id, [resource]))
                else:
                    request_id = self.rng.choice(self.requested[subject_id][-3:])
                    names = [r["id"] for r in self.asked[request_id]["resources"]]
                    resource = (self.rng.choice(names) if self.rng.random() < 0.9
                                else "res-elsewhere")
                open_.append((session_id, resource))
                events.append({**base, "type": "session.started", "session_id": session_id,
                               "request_id": request_id, "resource": resource})
            elif roll < 0.7:
                session_id, resource = self.rng.choice(open_)
                events.append({**base, "type": "session.activity", "session_id": session_id,
                               "resource": resource, "action": "SELECT"})
            elif roll < 0.85:
                session_id, _ = open_.pop(self.rng.randrange(len(open_)))
                events.append({**base, "type": "session.ended", "session_id": session_id})
            else:
                events.append({**base, "type": "task.completed",
                               "request_id": self.rng.choice(self.requested[subject_id])})
        return events

    def partition(self, subject_id: str) -> int | None:
        """None (the producer's murmur2 partition, the subject's own) for most subjects; for
        :data:`MISPLACED_PERCENT` of them, another partition, so the worker must forward
        their records."""
        index = int(subject_id.rsplit("-", 1)[1])
        if index % 100 >= MISPLACED_PERCENT or self.partitions < 2:
            return None
        return (partition_of(subject_key(subject_id), self.partitions) + 1) % self.partitions


Fault = Callable[[int], Awaitable[int]]
"""Strikes the n-th fault; returns how many records were in flight just before it."""


async def _publish(producer: AIOKafkaProducer, topic: str, mixed: Mixed,
                   events: list[dict[str, Any]]) -> None:
    futures = [await producer.send(topic, orjson.dumps(event),
                                   key=event["subject"]["id"].encode(),
                                   partition=mixed.partition(event["subject"]["id"]))
               for event in events]
    await asyncio.gather(*futures)


async def drive(stack: Stack, count: int, faults: int, fault: Fault,
                caught_up: Callable[[], Awaitable[object]], *, tag: str, seed: int,
                ) -> tuple[list[dict[str, Any]], list[int]]:
    """Publish ``count`` events in segments, strike ``faults`` faults in random segments
    (as soon as each is published: ``fault`` waits until work is in flight) and wait with
    ``caught_up`` after each segment.
    Returns the events and each fault's in-flight count."""
    rng = random.Random(seed)
    segments = 2 * max(faults, 5)
    mixed = Mixed(tag, max(8, count // 25), rng,
                  int(stack.env.get("JITWATCH_TOPIC_PARTITIONS") or 4))
    # Not in the first segment: the processes are still starting, and a broker that goes
    # away while faust creates its topics makes the worker exit (a supervisor's restart,
    # not the recovery the scenarios test).
    striking = sorted(rng.sample(range(1, segments), faults))
    per_pair = count / (segments // 2)
    events: list[dict[str, Any]] = []
    hits: list[int] = []
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20)
    await producer.start()
    try:
        for segment in range(segments):
            start = datetime.now(UTC)
            pair_end = round(per_pair * (segment // 2 + 1)) if segment % 2 else None
            if segment % 2 == 0:  # requests: four fifths of the pair
                made = mixed.requests(round(per_pair * 0.8), start)
                topic = stack.requests
            else:
                made = mixed.sessions_of(max(1, (pair_end or 0) - len(events)), start)
                topic = stack.env["JITWATCH_TOPIC_SESSIONS"]
            events += made
            await _publish(producer, topic, mixed, made)
            for _ in range(striking.count(segment)):
                hits.append(await fault(len(hits)))
            await caught_up()
    finally:
        await producer.stop()
    return events, hits

