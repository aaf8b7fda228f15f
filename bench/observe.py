"""What the worker's metrics cost per event (issue K): ``record_batch`` against the planning
of the same batches, both by this process's CPU time.

Run: .venv/bin/python bench/observe.py [--batches N] [--batch N]
Prints one line per figure: name, value, unit. The batches are planned once before timing
(the bench's request events, a fresh subject state each); ``record_batch`` then counts each
planned batch as the worker does once Kafka acknowledged it.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from importlib import resources

from common import request_payloads

from schemas.policy import parse_policy
from streams.engine.plan import LOG_APPEND_TIME, BatchPlan, Record, plan_batch, stored_keys
from streams.engine.topics import InputTopics
from streams.settings import TopicSettings
from streams.worker.observe import record_batch

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
TOPICS = TopicSettings()


def _plan(records: list[Record]) -> BatchPlan:
    return plan_batch(records, dict.fromkeys(stored_keys(records)), POLICY,
                      input_topics=InputTopics(TOPICS.topic_requests, TOPICS.topic_sessions),
                      decisions_topic=TOPICS.topic_decisions,
                      deadletter_topic=TOPICS.topic_deadletter, max_event_bytes=64 * 1024,
                      now=lambda: datetime.now(UTC), commands_topic=TOPICS.topic_commands)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    sent = time.time()
    payloads = list(request_payloads(args.batches * args.batch, subjects=args.batch))
    batches = [[Record(TOPICS.topic_requests, 0, offset, key, value, sent, LOG_APPEND_TIME)
                for offset, (key, value) in enumerate(payloads[first:first + args.batch])]
               for first in range(0, len(payloads), args.batch)]
    started = time.process_time()
    plans = [_plan(records) for records in batches]
    planning = time.process_time() - started
    started = time.process_time()
    for records, plan in zip(batches, plans, strict=True):
        record_batch(records, plan, sent + 0.01, POLICY, TOPICS, 64 * 1024)
    counting = time.process_time() - started
    events = len(payloads)
    print(f"observe.plan_cpu {planning / events * 1e6:.1f} us/event")
    print(f"observe.record_batch_cpu {counting / events * 1e6:.2f} us/event")
    print(f"observe.share {counting / planning * 100:.1f} % of planning")


if __name__ == "__main__":
    main()
