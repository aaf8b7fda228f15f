"""A worker whose commit path is instrumented (issue M's correctness gate).

Run as ``python -m tests.integration.commit_probe <report.jsonl>`` with a worker's
environment. Each batch whose handler returned (its verdicts acknowledged by Kafka, its
state stored) adds its input offsets to ``done`` (and to a ledger beside the report, which
a restarted probe reads back); each commit faust sends checks that every
offset below the committed one, on each input partition, is in ``done``, and appends one
line per committed partition to the report: ``{"tp", "offset", "missing"}``. On fresh
topics written without transactions (no gaps) ``missing`` must always be empty; with a
transactional producer it may hold only control records' and aborted records' offsets.
"""

from __future__ import annotations

import contextlib
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from faust.transport.consumer import ThreadDelegateConsumer

from streams.cli.main import main as jitwatch
from streams.worker import app as worker_app

__all__ = ["main"]


def main(report: Path) -> None:
    """Install the probes, then run the worker as ``jitwatch worker`` does."""
    done: dict[tuple[str, int], set[int]] = defaultdict(set)
    # What earlier runs of the probe decided (the test restarts it): kept beside the report.
    ledger = report.with_suffix(".done")
    if ledger.exists():
        for line in ledger.read_bytes().splitlines():
            topic, partition, offset = orjson.loads(line)
            done[(topic, partition)].add(offset)
    handle_batch = worker_app._handle_batch
    commit = ThreadDelegateConsumer._commit

    async def probed_batch(events: Any, **kwargs: Any) -> None:
        await handle_batch(events, **kwargs)
        with ledger.open("ab") as out:
            for event in events:  # only once the handler returned: sent and stored
                message = event.message
                done[(message.topic, message.partition)].add(message.offset)
                out.write(orjson.dumps([message.topic, message.partition, message.offset])
                          + b"\n")

    async def probed_commit(self: Any, offsets: Any) -> bool:
        with report.open("ab") as out:
            for tp, offset in offsets.items():
                if tp.topic.endswith("-changelog"):
                    continue
                seen = done[(tp.topic, tp.partition)]
                missing = [number for number in range(offset) if number not in seen]
                out.write(orjson.dumps({"tp": [tp.topic, tp.partition], "offset": offset,
                                        "missing": missing}) + b"\n")
        result: bool = await commit(self, offsets)
        return result

    worker_app._handle_batch = probed_batch  # type: ignore[assignment]
    ThreadDelegateConsumer._commit = probed_commit  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(jitwatch(["worker"]))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
