"""``jitwatch policy check FILE``: validate and lint a policy file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from schemas.errors import JitwatchError
from streams.cli.support import Commands
from streams.control.policy import load_policy
from streams.settings import Settings

__all__ = ["register"]


def register(commands: Commands) -> None:
    """Add ``policy`` to the ``jitwatch`` parser."""
    policy = commands.add_parser("policy", help="validate and lint a policy file")
    policy.add_argument("action", choices=["check"])
    policy.add_argument("file", type=Path)
    policy.add_argument("--strict", action="store_true", help="warnings fail too")
    policy.set_defaults(run=_cmd_policy)


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
