"""``jitwatch``: one registry of every command, and the dispatcher that runs them.

Each command group registers its own parsers and arguments (streams/cli/*.py, and the
audit package's commands); this module only puts them together in ``--help`` order, adds
each command's environment list to its ``--help``, builds the settings once, and maps
errors to exit codes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from schemas.errors import JitwatchError
from streams.cli import (
    audit,
    demo,
    identity,
    policy,
    report,
    schemas,
    siem,
    simulate,
    tail,
    topics,
    worker,
)
from streams.cli.gc_tuning import tune_gc
from streams.kafka.logs import quiet_aiokafka
from streams.settings import environment_help, load_settings

__all__ = ["main"]

_GROUPS = (worker, audit, topics, schemas, demo, policy, simulate, tail, report, siem,
           identity)
"""Every command group, in the order ``jitwatch --help`` lists them."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jitwatch",
        description="Just-in-time access enforcement on Kafka. Settings come from JITWATCH_* "
        "environment variables: `jitwatch COMMAND --help` lists those it reads.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in _GROUPS:
        group.register(commands)
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
    "audit notary": ("notary", "kafka", "decisions"),
    "audit verify": ("verifier", "verify", "kafka", "decisions"),
    "audit query": ("verifier",),
    "audit export": ("verifier",),
    "topics": ("kafka", "topics"),
    "demo": ("kafka", "inputs", "decisions"),
    "tail": ("kafka", "decisions"),
    "report": ("kafka", "inputs", "decisions"),
    "siem": ("kafka", "siem"),
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
