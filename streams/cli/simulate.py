"""``jitwatch simulate``: replay a JSONL file of events through the policy, in event time,
or list what a candidate policy would decide differently (``--diff``)."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from schemas.errors import JitwatchError
from schemas.notices import Notice
from schemas.policy import LoadedPolicy
from streams.cli.support import Commands, utc_time
from streams.control.policy import load_policy
from streams.engine.replay import BadLine, Item, Replay, UndecidedTick
from streams.printable import printable
from streams.settings import Settings

__all__ = ["register"]


def register(commands: Commands) -> None:
    """Add ``simulate`` to the ``jitwatch`` parser."""
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
    simulate.add_argument("--until", type=utc_time, metavar="TIME",
                          help="let event time run on to TIME (RFC 3339) after the last "
                          "event, so expiries up to then fire")
    simulate.add_argument("--diff", type=Path, metavar="OTHER_POLICY",
                          help="list the decisions that change under OTHER_POLICY; exit 1 "
                          "when any does (as diff)")
    simulate.add_argument("--notices", action="store_true",
                          help="also write the notices the stream sends to jit.notices "
                          "(records of schema jit.notice/v1, after the decisions of the "
                          "same event); with --diff, list changed notices too")
    simulate.add_argument("--strict", action="store_true",
                          help="exit 1 when a line was skipped, an expiry could not be "
                          "decided, or the file held no events")
    simulate.set_defaults(run=_cmd_simulate)


def _replay(path: Path, policy: LoadedPolicy, settings: Settings, progress: bool,
            until: datetime | None = None, notices: bool = False
            ) -> Iterator[tuple[Replay, Item]]:
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

        for item in replay_lines(lines(), policy, replay, settings.worker.max_event_bytes,
                                 until, settings.worker.max_stored_bytes,
                                 notices=notices):
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
    policy = load_policy(args.policy or settings.policy.policy_file)
    with _events_from(args.events) as (events, name):
        if args.diff is not None:
            return _simulate_diff(settings, args, events, policy, load_policy(args.diff))
        return _simulate(settings, args, events, name, policy)


def _simulate(settings: Settings, args: argparse.Namespace, events: Path, name: str,
              policy: LoadedPolicy) -> int:
    """Replay ``events`` (reported as ``name``) and print or write its decisions."""
    from streams.cli.printer import format_decision, format_notice
    from streams.engine.codec import encode_decision, encode_notice

    out = args.out.open("wb") if args.out else None
    as_jsonl = args.format == "jsonl"
    replay: Replay | None = None
    try:
        for seen, item in _replay(events, policy, settings, progress=True,
                                  until=args.until, notices=args.notices):
            replay = seen
            if isinstance(item, BadLine):
                print(f"{name}:{item.number}: skipped ({item.error_class}): "
                      f"{printable(item.message)}", file=sys.stderr)
                continue
            if isinstance(item, UndecidedTick):  # the stream dead-letters its tick command
                print(f"{name}: expiry not decided ({item.error_class}): "
                      f"{printable(item.message)}", file=sys.stderr)
                continue
            notice = isinstance(item, Notice)
            encoded = encode_notice(item) if isinstance(item, Notice) else encode_decision(item)
            if out is not None:
                out.write(encoded + b"\n")
            elif as_jsonl:
                sys.stdout.buffer.write(encoded + b"\n")
            else:
                dumped = item.model_dump(mode="json", by_alias=True)
                print(format_notice(dumped) if notice else format_decision(dumped))
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
               + (f"{replay.notices} notices, " if args.notices else "")
               + f"{len(replay.bad_lines)} bad lines skipped")
    if replay.undecided_ticks:
        count = len(replay.undecided_ticks)
        summary += f", {count} {'expiry' if count == 1 else 'expiries'} not decided"
    print(summary, file=sys.stderr)
    for label, counts in (("action", replay.actions), ("rule", replay.rules)):
        for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            print(f"  {label:<6} {name:<28} {count}", file=sys.stderr)
    return 1 if args.strict and (replay.bad_lines or replay.undecided_ticks) else 0


def _simulate_diff(settings: Settings, args: argparse.Namespace, events: Path,
                   current: LoadedPolicy, candidate: LoadedPolicy) -> int:
    """Print the events whose decisions change from the current to the candidate policy."""
    from streams.engine.replay import changed_events, outcomes

    def replayed(policy: LoadedPolicy) -> dict[str, list[str]]:
        return outcomes(item for _, item in _replay(events, policy, settings, progress=True,
                                                    until=args.until, notices=args.notices))

    def named(policy: LoadedPolicy) -> str:
        # Versions alone may match (an edited copy); the digest tells them apart.
        return f"{policy.ref.version} (sha256 {policy.ref.sha256[:12]})"

    before, after = replayed(current), replayed(candidate)
    changed = changed_events(before, after)
    if changed:
        print(f"- under {named(current)}\n+ under {named(candidate)}")
    for event_id in changed:  # event ids, request ids and targets are producers' claims
        print(f"{printable(event_id)}:")
        for line in before.get(event_id, []):
            print(f"  - {printable(line)}")
        for line in after.get(event_id, []):
            print(f"  + {printable(line)}")
    print(f"{len(changed)} of {len(set(before) | set(after))} events decide differently "
          f"under {named(candidate)} than under {named(current)}", file=sys.stderr)
    return 1 if changed else 0  # as diff(1): a shadow run in CI fails on a change
