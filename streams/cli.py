"""``jitwatch`` command line: worker, audit sink, topics, schemas, demo and tail."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from schemas.decisions import Decision
from schemas.errors import JitwatchError
from schemas.policy import LoadedPolicy
from streams.control.policy import load_policy
from streams.engine.replay import BadLine, Replay
from streams.kafka.logs import quiet_aiokafka
from streams.runtime import tune_gc
from streams.settings import Settings, environment_help, load_settings
from streams.worker.datadir import claim_data_dir

__all__ = ["main"]

log = logging.getLogger("jitwatch")


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.control.policy import load_policy_control
    from streams.kafka.admin import broker_answers
    from streams.worker.app import build_app, quiet_worker
    from streams.worker.policy_poll import attach_policy_control

    # Issue F: validated and (with signers configured) signature-checked, before anything
    # connects; every load is recorded on the decisions topic; reloads when it changes.
    control = load_policy_control(settings, args.policy or settings.policy_file)
    # faust would retry a wrong address or protocol for ever, with aiokafka's error line
    # every half second and no word of the setting: ask once, with a deadline.
    asyncio.run(broker_answers(settings))
    with claim_data_dir(settings.data_dir):
        app = build_app(settings, control.policy)
        attach_policy_control(app, settings, control)
        worker = quiet_worker(app, settings.log_level)
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


def _cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from streams.kafka.admin import ensure_topics

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
    from streams.kafka.decisions import collect_decisions
    from streams.kafka.inputs import publish_events

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


def _replay(path: Path, policy: LoadedPolicy, settings: Settings, progress: bool,
            until: datetime | None = None) -> Iterator[tuple[Replay, Decision | BadLine]]:
    from tqdm import tqdm

    from streams.engine.replay import replay_lines

    replay = Replay()
    size = path.stat().st_size
    with path.open("rb") as handle, tqdm(
        total=size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr,
        disable=not progress or size < 1_000_000, leave=False,
    ) as bar:

        def lines() -> Iterator[bytes]:
            for line in handle:
                bar.update(len(line))
                yield line

        for item in replay_lines(lines(), policy, replay, settings.max_event_bytes, until):
            yield replay, item


@contextlib.contextmanager
def _events_from(path: Path) -> Iterator[tuple[Path, str]]:
    """The events file to replay and the name to report lines by; ``-`` is stdin, copied
    to a temporary file first: ``--diff`` replays it twice, and the progress bar needs its
    size."""
    if str(path) != "-":
        if not path.is_file():
            raise JitwatchError(f"events file {path} "
                                f"{'is not a file' if path.exists() else 'does not exist'}")
        yield path, str(path)
        return
    with tempfile.NamedTemporaryFile(prefix="jitwatch-events-", suffix=".jsonl") as copy:
        shutil.copyfileobj(sys.stdin.buffer, copy)
        copy.flush()
        yield Path(copy.name), "stdin"


def _cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    policy = load_policy(args.policy or settings.policy_file)
    with _events_from(args.events) as (events, name):
        if args.diff is not None:
            return _simulate_diff(settings, args, events, policy, load_policy(args.diff))
        return _simulate(settings, args, events, name, policy)


def _simulate(settings: Settings, args: argparse.Namespace, events: Path, name: str,
              policy: LoadedPolicy) -> int:
    """Replay ``events`` (reported as ``name``) and print or write its decisions."""
    from streams.demo import format_decision
    from streams.engine.codec import encode_decision

    out = args.out.open("wb") if args.out else None
    as_jsonl = args.format == "jsonl"
    replay: Replay | None = None
    try:
        for seen, item in _replay(events, policy, settings, progress=True,
                                  until=args.until):
            replay = seen
            if isinstance(item, BadLine):
                print(f"{name}:{item.number}: skipped ({item.error_class}): "
                      f"{item.message}", file=sys.stderr)
                continue
            encoded = encode_decision(item)
            if out is not None:
                out.write(encoded + b"\n")
            elif as_jsonl:
                sys.stdout.buffer.write(encoded + b"\n")
            else:
                print(format_decision(item.model_dump(mode="json", by_alias=True)))
    finally:
        if out is not None:
            out.close()
    if replay is None:
        print(f"no events in {name}", file=sys.stderr)
        return 1 if args.strict else 0
    if args.until is not None and replay.last_at is not None and args.until < replay.last_at:
        print(f"--until {args.until.isoformat()} is before the last event "
              f"({replay.last_at.isoformat()}): it let no time run on", file=sys.stderr)
    summary = (f"{replay.events} events, {sum(replay.actions.values())} decisions, "
               f"{len(replay.bad_lines)} bad lines skipped")
    print(summary, file=sys.stderr)
    for label, counts in (("action", replay.actions), ("rule", replay.rules)):
        for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            print(f"  {label:<6} {name:<28} {count}", file=sys.stderr)
    return 1 if args.strict and replay.bad_lines else 0


def _simulate_diff(settings: Settings, args: argparse.Namespace, events: Path,
                   current: LoadedPolicy, candidate: LoadedPolicy) -> int:
    """Print the events whose decisions change from the current to the candidate policy."""
    from streams.engine.replay import changed_events, outcomes

    def replayed(policy: LoadedPolicy) -> dict[str, list[str]]:
        return outcomes(item for _, item in _replay(events, policy, settings, progress=True,
                                                    until=args.until))

    def named(policy: LoadedPolicy) -> str:
        # Versions alone may match (an edited copy); the digest tells them apart.
        return f"{policy.ref.version} (sha256 {policy.ref.sha256[:12]})"

    before, after = replayed(current), replayed(candidate)
    changed = changed_events(before, after)
    if changed:
        print(f"- under {named(current)}\n+ under {named(candidate)}")
    for event_id in changed:
        print(f"{event_id}:")
        for line in before.get(event_id, []):
            print(f"  - {line}")
        for line in after.get(event_id, []):
            print(f"  + {line}")
    print(f"{len(changed)} of {len(set(before) | set(after))} events decide differently "
          f"under {named(candidate)} than under {named(current)}", file=sys.stderr)
    return 1 if changed else 0  # as diff(1): a shadow run in CI fails on a change


def _cmd_policy(settings: Settings, args: argparse.Namespace) -> int:
    from policy.lint import describe, lint

    try:
        loaded = load_policy(args.file)
    except JitwatchError as exc:
        print(f"INVALID {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: policy {loaded.ref.version}, sha256 {loaded.ref.sha256}")
    for line in describe(loaded.policy):
        print(f"  {line}")
    findings = lint(loaded.policy)
    for finding in findings:
        print(f"{finding.level}: {finding.where}: {finding.message}")
    errors = sum(finding.level == "error" for finding in findings)
    if errors or (args.strict and findings):
        print(f"FAILED: {errors} error(s), {len(findings) - errors} warning(s)"
              + (" (--strict fails on warnings)" if not errors else ""), file=sys.stderr)
        return 1
    print(f"valid ({len(findings)} warning(s))")
    return 0


def _cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    from streams.demo import format_decision
    from streams.kafka.decisions import follow_decisions

    colour = sys.stdout.isatty()

    async def tail(stop: asyncio.Event) -> None:
        print(f"following {settings.topic_decisions} at {settings.kafka_bootstrap} "
              "(Ctrl-C to stop)", file=sys.stderr, flush=True)
        async for decision in follow_decisions(settings, stop, from_beginning=args.from_beginning):
            if args.json:
                print(orjson.dumps(decision).decode(), flush=True)
            else:
                print(format_decision(decision, colour=colour), flush=True)

    _run_until_signal(tail)
    return 0


def _utc_time(text: str) -> datetime:
    from pydantic import TypeAdapter, ValidationError

    from schemas._base import UtcDatetime

    try:
        return TypeAdapter(UtcDatetime).validate_python(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time with offset, e.g. 2026-11-23T18:00:00Z") from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jitwatch",
        description="Just-in-time access enforcement on Kafka. Settings come from JITWATCH_* "
        "environment variables: `jitwatch COMMAND --help` lists those it reads.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser("worker", help="run the enforcement worker (faust)")
    worker.add_argument("--policy", type=Path,
                        help="policy TOML (default: JITWATCH_POLICY_FILE, else the packaged "
                        "policy)")
    worker.set_defaults(run=_cmd_worker)

    sink = commands.add_parser("audit-sink", help="append every decision to the Redis audit "
                               "trail (also `jitwatch audit sink`)")
    sink.set_defaults(run=lambda s, a: run_sink(s, _run_until_signal))

    from streams.audit.commands import add_audit_commands, run_sink

    add_audit_commands(commands, _utc_time, _run_until_signal)

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

    policy = commands.add_parser("policy", help="validate and lint a policy file")
    policy.add_argument("action", choices=["check"])
    policy.add_argument("file", type=Path)
    policy.add_argument("--strict", action="store_true", help="warnings fail too")
    policy.set_defaults(run=_cmd_policy)

    simulate = commands.add_parser(
        "simulate", help="replay a JSONL file of events through the policy, in event time")
    simulate.add_argument("--events", type=Path, required=True,
                          help="JSONL, one event a line; - reads stdin")
    simulate.add_argument("--policy", type=Path,
                          help="policy TOML (default: JITWATCH_POLICY_FILE, else the packaged "
                          "policy)")
    simulate.add_argument("--out", type=Path, help="write decisions as JSONL to this file")
    simulate.add_argument("--format", choices=["text", "jsonl"], default="text",
                          help="stdout format when --out is not given")
    simulate.add_argument("--until", type=_utc_time, metavar="TIME",
                          help="let event time run on to TIME (RFC 3339) after the last "
                          "event, so expiries up to then fire")
    simulate.add_argument("--diff", type=Path, metavar="OTHER_POLICY",
                          help="list the decisions that change under OTHER_POLICY; exit 1 "
                          "when any does (as diff)")
    simulate.add_argument("--strict", action="store_true",
                          help="exit 1 when a line was skipped or the file held no events")
    simulate.set_defaults(run=_cmd_simulate)

    tail = commands.add_parser("tail", help="print decisions as they arrive")
    tail.add_argument("--from-beginning", action="store_true",
                      help="print the topic's earlier decisions first")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(run=_cmd_tail)

    # Issue F: the enforcer's own identity (acls, whoami) lives in streams/identity.py.
    from streams.identity import register_commands as register_identity_commands

    register_identity_commands(commands)
    for path, command in _commands(parser):
        groups = _ENVIRONMENT.get(path)
        if groups is not None:
            command.epilog = environment_help(*groups, "log")
            command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


_ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "worker": ("kafka", "topics", "worker"),
    "audit-sink": ("kafka", "decisions", "sink"),
    "audit sink": ("kafka", "decisions", "sink"),
    "audit notary": ("notary",),
    "audit verify": ("verifier", "verify", "kafka", "decisions"),
    "audit query": ("verifier",),
    "audit export": ("verifier",),
    "topics": ("kafka", "topics"),
    "demo": ("kafka", "inputs", "decisions"),
    "tail": ("kafka", "decisions"),
    "simulate": ("policy",),
    "acls": ("kafka", "topics", "identity"),
    "whoami": ("kafka", "topics", "identity", "verifier"),
}
"""The settings groups (:data:`streams.settings.ENVIRONMENT_GROUPS`) each command reads,
listed in its ``--help``; the others read only their arguments and files."""


def _commands(parser: argparse.ArgumentParser,
              path: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command parser with its path, e.g. ``audit verify``."""
    for action in parser._actions:  # noqa: SLF001  # argparse offers no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001  # same
            for name, command in action.choices.items():
                full = f"{path} {name}".strip()
                yield full, command
                yield from _commands(command, full)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jitwatch`` command."""
    args = _parser().parse_args(argv)
    tune_gc()
    try:
        settings = load_settings()
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        quiet_aiokafka()
        return int(args.run(settings, args))
    except JitwatchError as exc:
        print(f"jitwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader stopped early (`| head`): what it wanted was printed. Python would
        # report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except OSError as exc:  # a path that is missing, a directory, not permitted
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"jitwatch: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
