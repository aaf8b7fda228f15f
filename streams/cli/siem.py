"""``jitwatch siem``: every decision as an OCSF 1.8.0 event (issue K), written to the OCSF
topic in its own consumer group, or printed (``--stdout``), also from a file offline."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson

from streams.cli.support import Commands, run_until_signal
from streams.printable import printable
from streams.settings import Settings

__all__ = ["register"]


def register(commands: Commands) -> None:
    """Add ``siem`` to the ``jitwatch`` parser."""
    siem = commands.add_parser(
        "siem", help="publish every decision as an OCSF event for SIEMs",
        description="Read the decisions topic in the consumer group <app_id>-siem and write "
                    "each verdict as an OCSF 1.8.0 event (User Access Management 3005, "
                    "Account Change 3001 for locks) to JITWATCH_TOPIC_DECISIONS_OCSF, keyed "
                    "by subject id, at least once (drop duplicates by metadata.uid). "
                    "Policy-load records are not verdicts and are skipped.")
    siem.add_argument("--stdout", action="store_true",
                      help="print the events as JSONL instead of writing the topic")
    siem.add_argument("--from", dest="source", type=Path, metavar="FILE",
                      help="map this decisions file (JSONL or audit export; - is stdin) "
                      "and print it: offline, no Kafka")
    siem.set_defaults(run=_cmd_siem)


def _product_version() -> str:
    try:
        return version("jitwatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _converter() -> tuple[list[int], Callable[[bytes, str], bytes | None]]:
    """The mapping of one decisions-topic value to OCSF bytes (``None``: not a verdict),
    and the count of unreadable values it skipped."""
    from schemas.decisions import Decision
    from streams.engine.decision_lines import UnreadableError, read_record
    from streams.engine.ocsf import to_ocsf

    product = _product_version()
    skipped = [0]

    def convert(value: bytes, where: str = "") -> bytes | None:
        try:
            record = read_record(value)
        except UnreadableError as exc:
            skipped[0] += 1
            print(f"skipped{where}: {printable(str(exc))}", file=sys.stderr)
            return None
        if not isinstance(record, Decision):
            return None
        return orjson.dumps(to_ocsf(record, product))

    return skipped, convert


def _cmd_siem(settings: Settings, args: argparse.Namespace) -> int:
    skipped, convert = _converter()
    if args.source is not None:
        lines = (sys.stdin.buffer if str(args.source) == "-"
                 else args.source.open("rb"))
        with lines:
            for number, line in enumerate(lines, 1):
                event = convert(line, f" line {number}") if line.strip() else None
                if event is not None:
                    sys.stdout.buffer.write(event + b"\n")
        return 1 if skipped[0] else 0
    if args.stdout:
        from streams.kafka.decisions import follow_decisions

        async def show(stop: asyncio.Event) -> None:
            async for decision in follow_decisions(settings.kafka, settings.topics, stop,
                                                   from_beginning=True):
                event = convert(orjson.dumps(decision), "")
                if event is not None:
                    print(event.decode(), flush=True)

        run_until_signal(show)
        return 0
    from streams.kafka.siem import forward

    async def publish(stop: asyncio.Event) -> None:
        topics = settings.topics
        print(f"writing {topics.topic_decisions} as OCSF to {topics.topic_decisions_ocsf} "
              f"(group {topics.siem_group}; Ctrl-C to stop)", file=sys.stderr, flush=True)
        written = await forward(settings.kafka, topics, stop, lambda value: convert(value, ""))
        print(f"{written} events written", file=sys.stderr)

    run_until_signal(publish)
    return 0
