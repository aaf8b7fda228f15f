"""``jitwatch tail``: print decisions as they arrive."""

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
    tail = commands.add_parser("tail", help="print decisions as they arrive")
    tail.add_argument("--from-beginning", action="store_true",
                      help="print the topic's earlier decisions first")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(run=_cmd_tail)


def _cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    from streams.cli.printer import format_decision
    from streams.kafka.decisions import follow_decisions

    colour = sys.stdout.isatty()

    async def tail(stop: asyncio.Event) -> None:
        print(f"following {settings.topics.topic_decisions} at {settings.kafka.kafka_bootstrap} "
              "(Ctrl-C to stop)", file=sys.stderr, flush=True)
        async for decision in follow_decisions(settings.kafka, settings.topics, stop,
                                               from_beginning=args.from_beginning):
            if args.json:
                print(orjson.dumps(decision).decode(), flush=True)
            else:
                print(format_decision(decision, colour=colour), flush=True)

    run_until_signal(tail)
    return 0
