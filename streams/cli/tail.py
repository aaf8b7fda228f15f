"""``jitwatch tail``: print decisions as they arrive, or the input records as replay lines."""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from streams.cli.support import Commands, run_until_signal
from streams.settings import Settings

__all__ = ["register"]


def register(commands: Commands) -> None:
    """Add ``tail`` to the ``jitwatch`` parser."""
    tail = commands.add_parser(
        "tail", help="print decisions as they arrive (--inputs: the input records)",
        description="Print the decisions topic as it grows. With --inputs, print the "
                    "request and session topics instead, one replay line per record: the "
                    "event with the broker's time of the record (broker_time), the input "
                    "`jitwatch simulate --events` replays as the stream decided it; with "
                    "--from-beginning --to-end that is an export of the topics.")
    tail.add_argument("--from-beginning", action="store_true",
                      help="print the topics' earlier records first")
    tail.add_argument("--json", action="store_true",
                      help="decisions: one JSON object per line (--inputs always is)")
    tail.add_argument("--inputs", action="store_true",
                      help="print the input topics as replay lines with broker_time")
    tail.add_argument("--to-end", action="store_true",
                      help="stop at the ends the topics had when tail started")
    tail.set_defaults(run=_cmd_tail)


def _cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    if args.inputs:
        return _tail_inputs(settings, args)
    from streams.cli.printer import format_decision
    from streams.kafka.decisions import follow_decisions

    colour = sys.stdout.isatty()

    async def tail(stop: asyncio.Event) -> None:
        print(f"following {settings.topics.topic_decisions} at {settings.kafka.kafka_bootstrap} "
              "(Ctrl-C to stop)", file=sys.stderr, flush=True)
        async for decision in follow_decisions(settings.kafka, settings.topics, stop,
                                               from_beginning=args.from_beginning,
                                               to_end=args.to_end):
            if args.json:
                print(orjson.dumps(decision).decode(), flush=True)
            else:
                print(format_decision(decision, colour=colour), flush=True)

    run_until_signal(tail)
    return 0


def _tail_inputs(settings: Settings, args: argparse.Namespace) -> int:
    from streams.engine.codec import replay_line
    from streams.kafka.inputs import follow_inputs
    from streams.printable import printable

    skipped = 0

    async def tail(stop: asyncio.Event) -> None:
        nonlocal skipped
        topics = settings.topics
        print(f"following {topics.topic_requests} and {topics.topic_sessions} at "
              f"{settings.kafka.kafka_bootstrap} as replay lines (Ctrl-C to stop)",
              file=sys.stderr, flush=True)
        async for record in follow_inputs(settings.kafka, topics, stop,
                                          from_beginning=args.from_beginning,
                                          to_end=args.to_end):
            line = (replay_line(record.value, record.broker_time)
                    if record.broker_time is not None else None)
            if line is None:
                skipped += 1
                why = ("no broker time (CreateTime): the worker dead-letters it as "
                       "clock-untrusted" if record.broker_time is None
                       else "not a JSON object: the worker dead-letters it")
                print(f"{printable(record.topic)}[{record.partition}]@{record.offset} "
                      f"skipped: {why}", file=sys.stderr, flush=True)
                continue
            sys.stdout.buffer.write(line + b"\n")
            sys.stdout.buffer.flush()

    run_until_signal(tail)
    if skipped:
        print(f"{skipped} records skipped", file=sys.stderr)
    return 0
