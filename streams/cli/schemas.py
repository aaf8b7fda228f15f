"""``jitwatch schemas export [--check]``: the JSON Schema files from the models."""

from __future__ import annotations

import argparse
import sys

from streams.cli.support import Commands
from streams.settings import Settings

__all__ = ["register"]


def register(commands: Commands) -> None:
    """Add ``schemas`` to the ``jitwatch`` parser."""
    schemas = commands.add_parser("schemas", help="export JSON Schema files from the models")
    schemas.add_argument("action", choices=["export"])
    schemas.add_argument("--check", action="store_true", help="fail if the files are stale")
    schemas.set_defaults(run=_cmd_schemas)


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
