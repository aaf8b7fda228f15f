"""Pure core throughput: decisions per second over generated events, on one core.

Run: .venv/bin/python bench/core.py [--events N] [--subjects N]
Prints one line per figure: name, value, unit. Events are generated and validated before
timing starts, so the figure is the core alone (decide + decision building), as the stream
and simulate run it: ``core.step`` hands each event's bytes in (what its redelivery mark is
made of, where ``step`` takes them) and takes each decision's wire bytes out (encoding the
models, in a tree whose ``step`` returns models), so the figure is comparable across trees.
``core.plan`` is the worker's planning of the same events as records
(``plan_batch`` in batches of 500: decode event and stored state, step, encode state and
decisions), and ``state.read_*`` the two readers of the final stored values. Each rate
comes twice: by the wall clock and by this process's CPU time (``*_cpu``), which stays
comparable when other work shares the machine.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import random
import time
from datetime import UTC, datetime, timedelta
from importlib import resources

from policy import decide, step
from schemas.decisions import Cause
from schemas.events import INPUT_EVENT, InputEvent
from schemas.policy import LoadedPolicy, parse_policy
from schemas.state import StoredSubject, SubjectState
from streams.cli.gc_tuning import tune_gc
from streams.engine.codec import decode_stored, encode_decision, encode_stored
from streams.engine.plan import Record, plan_batch
from streams.engine.stored import read_stored
from streams.engine.topics import InputTopics

ENVS = ("prod", "research", "staging")
T0 = datetime(2026, 11, 23, tzinfo=UTC)


def generate(count: int, subjects: int, seed: int = 7) -> list[InputEvent]:
    """A mix of requests (1 to 3 resources), withdrawals and task completions."""
    rng = random.Random(seed)
    events: list[InputEvent] = []
    for number in range(count):
        subject = f"subject-{rng.randrange(subjects)}"
        at = (T0 + timedelta(milliseconds=number * 5)).isoformat()
        roll = rng.random()
        base = {"event_id": f"e-{number}", "at": at, "subject": {"id": subject}}
        if roll < 0.8:
            resources = [
                {"id": f"res-{rng.randrange(20)}", "env": rng.choice(ENVS),
                 "sensitivity": "low"}
                for _ in range(rng.randint(1, 3))
            ]
            raw = {**base, "type": "request.created", "request_id": f"r-{number}",
                   "resources": resources, "ttl_s": rng.choice((60, 600, 3600)),
                   "reason": "bench"}
        else:
            kind = "request.withdrawn" if roll < 0.9 else "task.completed"
            raw = {**base, "type": kind, "request_id": f"r-{max(0, number - rng.randrange(50))}"}
        events.append(INPUT_EVENT.validate_python(raw))
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    args = parser.parse_args()

    tune_gc()  # as every jitwatch command runs
    policy = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
    events = generate(args.events, args.subjects)
    # The stream and simulate hold one event at a time; this bench holds them all. Frozen,
    # they are out of the collector's walks, as they would be out of the heap.
    gc.collect()
    gc.freeze()

    # decide() alone: the pure core's verdicts, as the property tests and rules see them.
    plain: dict[str, SubjectState] = {}
    verdicts = 0
    started, cpu = time.perf_counter(), time.process_time()
    for event in events:
        state, made = decide(plain.get(event.subject.id, SubjectState()), event, event.at,
                             policy.policy)
        plain[event.subject.id] = state
        verdicts += len(made)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"core.decide.events_per_s {len(events) / elapsed:,.0f} events/s")
    print(f"core.decide.verdicts_per_s {verdicts / elapsed:,.0f} verdicts/s")
    print(f"core.decide.events_per_s_cpu {len(events) / cpu:,.0f} events/s")
    print(f"core.decide.verdicts_per_s_cpu {verdicts / cpu:,.0f} verdicts/s")

    # step(): decide plus the contract decisions the stream and simulate publish.
    raws = [event.__pydantic_serializer__.to_json(event) for event in events]
    states, decisions, elapsed, cpu = run_steps(events, raws, policy)

    grants = sum(len(s.grants) for stored in states.values() for s in stored.tenants.values())
    state_bytes = sum(len(encode_stored(stored)) for stored in states.values())
    print(f"core.step.events_per_s {len(events) / elapsed:,.0f} events/s")
    print(f"core.step.decisions_per_s {decisions / elapsed:,.0f} decisions/s")
    print(f"core.step.events_per_s_cpu {len(events) / cpu:,.0f} events/s")
    print(f"core.step.decisions_per_s_cpu {decisions / cpu:,.0f} decisions/s")
    plan(events, policy)
    values = [encode_stored(stored) for stored in states.values()]
    for name, read in (("read_validated", StoredSubject.model_validate_json),
                       ("read_fast", read_stored), ("decode_stored", decode_stored)):
        cpu = time.process_time()
        for value in values:
            read(value)
        cpu = time.process_time() - cpu
        print(f"state.{name}_cpu {cpu / len(values) * 1e6:,.1f} µs/value")
    print(f"state.bytes_per_active_grant {state_bytes / max(grants, 1):,.0f} B "
          f"({grants} live grants, {len(states)} subjects, incl. applied-event ids)")


def run_steps(events: list[InputEvent], raws: list[bytes], policy: LoadedPolicy
              ) -> tuple[dict[str, StoredSubject], int, float, float]:
    """``step()`` over ``events`` as the stream runs it: each record's bytes (``raws``) in,
    the decisions' wire bytes out. Returns the states, the decision count, wall and CPU
    time."""
    takes_raw = "raw" in inspect.signature(step).parameters  # issue M on
    states: dict[str, StoredSubject] = {}
    decisions = 0
    started, cpu = time.perf_counter(), time.process_time()
    for event, raw in zip(events, raws, strict=True):
        key = event.subject.id
        cause = Cause(event_id=event.event_id, type=event.type)
        result = (step(states.get(key), event, policy, cause, raw=raw) if takes_raw
                  else step(states.get(key), event, policy, cause))
        if result.changed:
            states[key] = result.stored
        encoded = getattr(result, "encoded", None)  # issue M on: the bytes already
        if encoded is None:
            encoded = [encode_decision(decision) for decision in result.decisions]
        decisions += len(encoded)
    return states, decisions, time.perf_counter() - started, time.process_time() - cpu


def plan(events: list[InputEvent], policy: LoadedPolicy, batch: int = 500) -> None:
    """The worker's planning of ``events`` as input records (no broker time: decided at
    their ``at``, as in the step figure), stored values kept as the table would."""
    records = [Record("requests", 0, offset, event.subject.id.encode(),
                      event.__pydantic_serializer__.to_json(event))
               for offset, event in enumerate(events)]
    table: dict[tuple[int, bytes], bytes | Exception | None] = {}
    topics = InputTopics(requests="requests", sessions="requests")
    decisions = 0
    started, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(records), batch):
        done = plan_batch(records[first:first + batch], table, policy, input_topics=topics,
                          decisions_topic="decisions", deadletter_topic="dead",
                          max_event_bytes=65_536, now=lambda: T0)
        for write in done.writes.values():
            table[(0, write.key)] = write.value
        decisions += done.decisions
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"core.plan.events_per_s {len(events) / elapsed:,.0f} events/s")
    print(f"core.plan.events_per_s_cpu {len(events) / cpu:,.0f} events/s")
    print(f"core.plan.us_per_event_cpu {cpu / len(events) * 1e6:,.1f} µs/event")


if __name__ == "__main__":
    main()
