"""``jitwatch topics create``: create missing topics, check partition counts."""

from __future__ import annotations

import argparse
import asyncio

from streams.cli.support import Commands
from streams.settings import Settings

__all__ = ["register"]


def register(commands: Commands) -> None:
    """Add ``topics`` to the ``jitwatch`` parser."""
    topics = commands.add_parser("topics", help="create missing topics and check partitions")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(run=_cmd_topics)


def _cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from streams.kafka.admin import ensure_topics

    counts = asyncio.run(ensure_topics(settings.kafka, settings.topics))
    for name, partitions in sorted(counts.items()):
        print(f"{name}: {partitions} partitions")
    return 0
