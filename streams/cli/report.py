"""``jitwatch report``: the exposure report (issue K) of the decisions topic or of a
decisions file, as a terminal summary and, with ``--out``, one self-contained HTML file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from schemas.errors import JitwatchError
from streams.cli.support import Commands, utc_time
from streams.engine.exposure import ExposureBuilder
from streams.printable import printable
from streams.settings import Settings

if TYPE_CHECKING:
    from schemas.events import InputEvent

__all__ = ["register"]


def register(commands: Commands) -> None:
    """Add ``report`` to the ``jitwatch`` parser."""
    report = commands.add_parser(
        "report", help="exposure report: who held what, for how long, and how it was decided",
        description="Read the decisions topic (or --decisions FILE: decisions JSONL as "
                    "`simulate --format jsonl` or `tail --json` write it, or an `audit "
                    "export`) and report grant-hours, TTLs and how grants ended, review "
                    "queue, break-glass, locks and policies. Prints a summary; --out also "
                    "writes an HTML file that needs no network to open.")
    report.add_argument("--decisions", type=Path, metavar="FILE",
                        help="read this file instead of the decisions topic (- is stdin)")
    report.add_argument("--events", type=Path, metavar="FILE",
                        help="the input events (JSONL, as `simulate` reads them): adds "
                        "requested TTLs, environments and sensitivities the decisions lack")
    report.add_argument("--inputs", action="store_true",
                        help="read the same from the requests topic (JITWATCH_TOPIC_REQUESTS)")
    report.add_argument("--since", type=utc_time, metavar="TIME",
                        help="report from TIME (RFC 3339); grants live then count from it")
    report.add_argument("--until", type=utc_time, metavar="TIME",
                        help="report until TIME (default: the last decision)")
    report.add_argument("--tenant", help="this tenant only")
    report.add_argument("--out", type=Path, metavar="FILE.html", help="write the HTML report")
    report.set_defaults(run=_cmd_report)


def _lines(handle: IO[bytes], total: int | None, name: str) -> Iterator[bytes]:
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, desc=name, file=sys.stderr,
              disable=total is None or total < 1_000_000, leave=False) as bar:
        for line in handle:
            bar.update(len(line))
            yield line


def _file_lines(path: Path) -> Iterator[bytes]:
    if str(path) == "-":
        yield from sys.stdin.buffer
        return
    with path.open("rb") as handle:
        yield from _lines(handle, path.stat().st_size, path.name)


def _fold(builder: ExposureBuilder, number: int, value: bytes | None) -> None:
    from streams.engine.decision_lines import UnreadableError, read_record

    if value is None:  # a tombstone on the decisions topic: no decision, and not silent
        builder.unreadable += 1
        print(f"record {number} skipped: no value", file=sys.stderr)
        return
    try:
        record = read_record(value)
    except UnreadableError as exc:
        builder.unreadable += 1
        print(f"record {number} skipped: {printable(str(exc))}", file=sys.stderr)
        return
    if record is not None:
        builder.add(record)


async def _read_topic(settings: Settings, topic: str,
                      each: Callable[[int, bytes | None], None]) -> None:
    """Pass every value of ``topic`` (from its start to its end now; None for a record
    without one) to ``each`` as it is read (never all held at once), with a progress bar
    over its offsets."""
    from tqdm import tqdm

    from streams.kafka.decisions import read_to_end

    bar = tqdm(unit=" records", desc=topic, file=sys.stderr, leave=False,
               disable=not sys.stderr.isatty())

    def total(count: int) -> None:
        bar.total = count
        bar.refresh()

    try:
        async for value in read_to_end(settings.kafka, topic, total):
            bar.update(1)
            each(bar.n, value)
    finally:
        bar.close()


def _fact(builder: ExposureBuilder, value: bytes,
          parse: Callable[[bytes], InputEvent | None]) -> bool:
    """Add ``value``'s ``request.created`` (if it is one) to ``builder``; False when
    ``value`` is not an event."""
    from schemas.errors import InputError
    from schemas.events import RequestCreated
    from streams.engine.exposure import facts_of

    if not value.strip():
        return True
    try:
        event = parse(value.rstrip(b"\n"))
    except InputError:
        return False
    if isinstance(event, RequestCreated):
        key, facts = facts_of(event)
        builder.facts[key] = facts
    return True


def _facts(settings: Settings, args: argparse.Namespace, builder: ExposureBuilder) -> None:
    """What the requests asked, from ``--events FILE`` (replay lines) or ``--inputs`` (the
    requests topic)."""
    from streams.engine.codec import parse_event, parse_line

    most = settings.worker.max_event_bytes
    bad = 0
    if args.events is not None:
        for line in _file_lines(args.events):
            bad += not _fact(builder, line, lambda value: parse_line(value, most)[0])
    if args.inputs:
        def each(_: int, value: bytes | None) -> None:
            nonlocal bad  # a record without a value (a tombstone) is not an event either
            bad += value is None or not _fact(builder, value,
                                              lambda raw: parse_event(raw, most))

        asyncio.run(_read_topic(settings, settings.topics.topic_requests, each))
    if bad:
        print(f"{bad} input records are not events (skipped; the worker dead-letters them)",
              file=sys.stderr)


def _cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from streams.engine.exposure_text import summary_rows

    if args.since is not None and args.until is not None and args.until <= args.since:
        raise JitwatchError("--until must be after --since")
    builder = ExposureBuilder(tenant=args.tenant)
    _facts(settings, args, builder)
    if args.decisions is not None:
        for number, line in enumerate(_file_lines(args.decisions), 1):
            _fold(builder, number, line)
    else:
        asyncio.run(_read_topic(settings, settings.topics.topic_decisions,
                                lambda number, value: _fold(builder, number, value)))
    exposure = builder.finish(args.since, args.until)
    for label, value in summary_rows(exposure):
        print(f"{label:<34} {printable(value)}")
    if args.out is not None:
        from streams.engine.exposure_html import render_html

        source = str(args.decisions or settings.topics.topic_decisions)
        title = f"jitwatch exposure report: {source}" + (
            f", tenant {args.tenant}" if args.tenant else "")
        args.out.write_text(render_html(exposure, title), encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
