"""``jitwatch audit-sink`` and ``jitwatch audit ...``: registered from the audit package's
own commands (streams/audit/commands.py), with this package's shared helpers."""

from __future__ import annotations

from streams.cli.support import Commands, run_until_signal, utc_time

__all__ = ["register"]


def register(commands: Commands) -> None:
    """Add ``audit-sink`` and ``audit`` to the ``jitwatch`` parser."""
    from streams.audit.commands import add_audit_commands, run_sink

    sink = commands.add_parser("audit-sink", help="append every decision to the Redis audit "
                               "trail (also `jitwatch audit sink`)")
    sink.set_defaults(run=lambda s, a: run_sink(s, run_until_signal))
    add_audit_commands(commands, utc_time, run_until_signal)
