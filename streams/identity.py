"""The enforcer as an identity: apply the declared ACLs, and say who it runs as (``whoami``)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from streams.settings import Settings

__all__ = ["cmd_acls", "register_commands"]

log = logging.getLogger(__name__)


def cmd_acls(settings: Settings, args: argparse.Namespace) -> int:
    """``jitwatch acls apply|show``: create the file's ACLs (as admin), or print them."""
    from streams.admin import wait_for_broker
    from streams.principals import acl_bindings, apply_acls, load_principals

    principals = load_principals(args.file or settings.principals_file)
    bindings = acl_bindings(principals, settings, only=args.principal)
    if args.action == "show":
        for binding in bindings:
            print(binding)
        return 0

    async def run() -> None:
        admin = await wait_for_broker(settings)
        try:
            await apply_acls(admin, bindings)
        finally:
            await admin.close()

    asyncio.run(run())
    for binding in bindings:
        print(binding)
    print(f"{len(bindings)} ACL bindings in force for {len(principals.principals)} principals")
    return 0


def register_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the identity commands to the ``jitwatch`` parser."""
    from pathlib import Path

    acls = commands.add_parser(
        "acls", help="apply (as admin) or show the Kafka ACLs of the principals file")
    acls.add_argument("action", choices=["apply", "show"])
    acls.add_argument("--file", type=Path,
                      help="principals file (default JITWATCH_PRINCIPALS_FILE, "
                      "ops/principals.toml)")
    acls.add_argument("--principal", help="only this principal's ACLs")
    acls.set_defaults(run=cmd_acls)

