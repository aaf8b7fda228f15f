"""What several commands share: the registry's type, running until a signal, and time
arguments."""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import datetime
from typing import TypeAlias

__all__ = ["Commands", "run_until_signal", "utc_time"]

# argparse names no public type for it; the string keeps typeshed's generic off the runtime.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # noqa: SLF001
"""The ``jitwatch`` subcommand registry each command group adds its parsers to."""


def run_until_signal(main: object) -> None:
    """Run ``main(stop)`` (a coroutine function) until SIGINT or SIGTERM sets ``stop``."""
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)  # type: ignore[operator]

    asyncio.run(runner())


def utc_time(text: str) -> datetime:
    """An argument type: an RFC 3339 time with an offset, in UTC."""
    from pydantic import TypeAdapter, ValidationError

    from schemas._base import UtcDatetime

    try:
        return TypeAdapter(UtcDatetime).validate_python(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time with offset, e.g. 2026-11-23T18:00:00Z") from exc
