"""Instruction-count harness for A/B of the worker's planning (issue M).

Run from the root of the tree to measure (it imports that tree's code):

    valgrind --tool=callgrind .venv/bin/python bench/plan_ab.py 5000 1000 plan
    valgrind --tool=callgrind .venv/bin/python bench/plan_ab.py 5000 1000 none

and take the difference of the two ``Collected`` counts over the event count: the
instructions ``plan_batch`` spends per event (batches of 500, stored values kept as the
table would), repeatable on a loaded machine where wall and CPU times are not. Mode
``step`` counts policy ``step()`` alone over the same events, as ``bench/core.py``'s
``core.step`` runs it (the events' bytes in, the decisions' bytes out; no broker time).
The old tree needs this file and ``bench/core.py`` copied in (``generate`` makes the same
events, ``run_steps`` adapts to a ``step`` without ``raw`` or ``encoded``).
"""

from __future__ import annotations

import gc
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

sys.path[:0] = [str(Path.cwd()), str(Path.cwd() / "bench")]

from core import generate, run_steps  # noqa: E402 - the tree under test, by path

from schemas.policy import parse_policy  # noqa: E402
from streams.engine.plan import Record, plan_batch  # noqa: E402
from streams.engine.topics import InputTopics  # noqa: E402

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def main() -> None:
    count, subjects, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    policy = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
    events = generate(count, subjects)
    records = [Record("requests", 0, offset, event.subject.id.encode(),
                      event.__pydantic_serializer__.to_json(event))
               for offset, event in enumerate(events)]
    gc.collect()
    gc.freeze()
    if mode == "step":
        run_steps(events, [record.value or b"" for record in records], policy)
        return
    if mode != "plan":
        return  # the baseline: everything but the planning
    table: dict[tuple[int, bytes], bytes | Exception | None] = {}
    topics = InputTopics(requests="requests", sessions="requests")
    for first in range(0, len(records), 500):
        done = plan_batch(records[first:first + 500], table, policy, input_topics=topics,
                          decisions_topic="decisions", deadletter_topic="dead",
                          max_event_bytes=65_536, now=lambda: T0)
        for write in done.writes.values():
            table[(0, write.key)] = write.value


if __name__ == "__main__":
    main()
