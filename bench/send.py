"""What ``send_all`` costs per record (issue M): faust's producer one record at a time
against :class:`~streams.worker.send.BatchProducer` (one aiokafka batch per
topic-partition), on the real broker, by this process's CPU time.

Run (stack up): .venv/bin/python bench/send.py [--rounds N] [--batch N] [--only PATH]
Prints one line per figure: name, value, unit. Each round sends one batch of each shape
through each path, the paths alternating, so load from other work falls on both alike:

- ``decisions``: ``--batch`` verdict-sized records (about 400 bytes) keyed by 200 subjects,
  placed by the key (the worker's decisions);
- ``changelog``: ``--batch`` stored-state-sized records (about 1.4 KB) on the partition the
  caller names (the worker's changelog writes).

The CPU counted is everything the process does while ``send_all`` runs: hand-over, the
aiokafka sender's requests, and the acknowledgements (``send_all`` returns after the last).

Instruction counts (steady under load; the kernel's side of the sockets not counted): one
path alone, ``--only per_record`` or ``--only batched``, under callgrind with ``--rounds
10`` and ``--rounds 0`` (the warm-up round only); the difference of the two ``Collected``
counts over ``10 * 2 * --batch`` is that path's instructions per record:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/send.py \
        --only batched --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid

import faust
from common import BOOTSTRAP, create_topics

from streams.worker.send import BatchProducer, Outgoing, send_all

PARTITIONS = 4


def _shapes(run: str, batch: int) -> dict[str, list[Outgoing]]:
    rng = random.Random(5)
    subjects = [f"user-{n:05d}@example.com".encode() for n in range(200)]
    return {
        "decisions": [(f"bench-send-{run}.decisions", rng.choice(subjects),
                       rng.randbytes(400), None, None) for _ in range(batch)],
        "changelog": [(f"bench-send-{run}.changelog", rng.choice(subjects),
                       rng.randbytes(1400), rng.randrange(PARTITIONS), None)
                      for _ in range(batch)],
    }


async def _bench(rounds: int, batch: int, only: str | None) -> None:
    run = uuid.uuid4().hex[:8]
    shapes = _shapes(run, batch)
    await create_topics([records[0][0] for records in shapes.values()], PARTITIONS)
    app = faust.App(f"bench-send-{run}", broker=f"kafka://{BOOTSTRAP}", producer_acks=-1,
                    producer_linger_ms=2)
    await app.producer.start()
    paths = {name: path for name, path in (("per_record", app.producer),
                                           ("batched", BatchProducer(app.producer)))
             if only in (None, name)}
    spent = {(shape, path): 0.0 for shape in shapes for path in paths}
    try:
        for number in range(rounds + 1):  # the first round warms up both paths
            order = list(paths) if number % 2 else list(reversed(paths))
            for shape, records in shapes.items():
                for path in order:
                    started = time.process_time()
                    await send_all(paths[path], records)
                    if number:
                        spent[(shape, path)] += time.process_time() - started
    finally:
        await app.producer.stop()
    if not rounds:
        return
    for (shape, path), seconds in spent.items():
        print(f"send.{shape}.{path}.cpu_per_record {seconds / rounds / batch * 1e6:.2f} us")
    for shape in shapes if only is None else ():
        ratio = spent[(shape, "batched")] / spent[(shape, "per_record")]
        print(f"send.{shape}.batched_vs_per_record {ratio:.2f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--only", choices=("per_record", "batched"))
    args = parser.parse_args()
    asyncio.run(_bench(args.rounds, args.batch, args.only))


if __name__ == "__main__":
    main()
