"""``jitwatch`` command line: worker, audit sink, topics, schemas, demo and tail."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from schemas.errors import JitwatchError
from schemas.policy import LoadedPolicy, parse_policy
from streams.settings import Settings, load_settings

__all__ = ["main"]

log = logging.getLogger("jitwatch")


def load_policy(path: Path | None) -> LoadedPolicy:
    """Read the policy file, or the packaged default policy when none is given."""
    if path is None:
        text = resources.files("policy").joinpath("default.toml").read_text(encoding="utf-8")
        return parse_policy(text, "packaged default policy")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JitwatchError(f"cannot read policy file {path}: {exc.strerror}") from exc
    return parse_policy(text, str(path))


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    import faust  # imported here: the other commands start faster without it

    from streams.admin import ensure_topics
    from streams.app import build_app

    policy = load_policy(args.policy or settings.policy_file)
    asyncio.run(ensure_topics(settings))
    log.info("policy %s (sha256 %s…) in force", policy.ref.version, policy.ref.sha256[:12])
    app = build_app(settings, policy)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0


def _run_until_signal(main: object) -> None:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)  # type: ignore[operator]

    asyncio.run(runner())


def _cmd_audit_sink(settings: Settings, args: argparse.Namespace) -> int:
    from streams.audit import run_audit_sink

    _run_until_signal(lambda stop: run_audit_sink(settings, stop))
    return 0


def _cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from streams.admin import ensure_topics

    counts = asyncio.run(ensure_topics(settings))
    for name, partitions in sorted(counts.items()):
        print(f"{name}: {partitions} partitions")
    return 0


def _cmd_schemas(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.export import SCHEMA_DIR, stale_schemas, write_schemas

    if args.check:
        stale = stale_schemas()
        if stale:
            print(f"stale JSON Schema files in {SCHEMA_DIR}: {', '.join(stale)}; "
                  "run `jitwatch schemas export`", file=sys.stderr)
            return 1
        print("JSON Schema files match the models")
        return 0
    for path in write_schemas():
        print(f"wrote {path}")
    return 0


def _caused_by(event_ids: set[str], decision: dict[str, Any]) -> bool:
    return decision["cause"]["event_id"] in event_ids


def _cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from streams.demo import demo_phases, format_decision
    from streams.kafka_io import collect_decisions, publish_events

    colour = sys.stdout.isatty()
    expected = 0
    for phase in demo_phases():
        tagged = {event["event_id"] for event in phase.events}
        expected += phase.decisions
        print(f"publishing {len(phase.events)} demo events …")
        asyncio.run(publish_events(settings, phase.events))
        decisions = asyncio.run(
            collect_decisions(settings, partial(_caused_by, tagged),
                              expect=phase.decisions, timeout_s=args.timeout)
        )
        for decision in decisions:
            print(format_decision(decision, colour=colour))
        if len(decisions) < phase.decisions:
            print(f"only {len(decisions)} of {phase.decisions} decisions arrived within "
                  f"{args.timeout:.0f} s; is the worker running (see its log)?", file=sys.stderr)
            return 1
    print(f"{expected} decisions")
    return 0


def _cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    from streams.demo import format_decision
    from streams.kafka_io import follow_decisions

    colour = sys.stdout.isatty()

    async def tail(stop: asyncio.Event) -> None:
        async for decision in follow_decisions(settings, stop, from_beginning=args.from_beginning):
            if args.json:
                print(orjson.dumps(decision).decode(), flush=True)
            else:
                print(format_decision(decision, colour=colour), flush=True)

    _run_until_signal(tail)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jitwatch",
        description="Just-in-time access enforcement on Kafka. Settings come from JITWATCH_* "
        "environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser("worker", help="run the enforcement worker (faust)")
    worker.add_argument("--policy", type=Path, help="policy TOML (default: packaged policy)")
    worker.set_defaults(run=_cmd_worker)

    sink = commands.add_parser("audit-sink", help="append every decision to the Redis audit trail")
    sink.set_defaults(run=_cmd_audit_sink)

    topics = commands.add_parser("topics", help="create missing topics and check partitions")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(run=_cmd_topics)

    schemas = commands.add_parser("schemas", help="export JSON Schema files from the models")
    schemas.add_argument("action", choices=["export"])
    schemas.add_argument("--check", action="store_true", help="fail if the files are stale")
    schemas.set_defaults(run=_cmd_schemas)

    demo = commands.add_parser("demo", help="publish a demo scenario and print its decisions")
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    demo.set_defaults(run=_cmd_demo)

    tail = commands.add_parser("tail", help="print decisions as they arrive")
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(run=_cmd_tail)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jitwatch`` command."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        # aiokafka narrates every subscription change at INFO; the worker's own logs suffice.
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        return int(args.run(settings, args))
    except JitwatchError as exc:
        print(f"jitwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
