"""``jitwatch worker``: the enforcement worker (faust)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from types import FrameType
from typing import NoReturn

from streams.cli.support import Commands
from streams.settings import Settings

__all__ = ["register"]


def register(commands: Commands) -> None:
    """Add ``worker`` to the ``jitwatch`` parser."""
    worker = commands.add_parser("worker", help="run the enforcement worker (faust)")
    worker.add_argument("--policy", type=Path,
                        help="policy TOML (default: JITWATCH_POLICY_FILE, else the packaged "
                        "policy)")
    worker.set_defaults(run=_cmd_worker)


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    # Until faust's worker handles SIGTERM itself (it installs its own handlers as it
    # starts), a stop ends the start in order, exit 0, instead of the default kill
    # (returncode -15: a test restarting a worker that had just been started failed
    # "worker did not stop cleanly"). Nothing is decided before faust runs.
    signal.signal(signal.SIGTERM, _stop_before_start)
    from streams.control.rollback import IN_FORCE_FILE
    from streams.control.start import load_policy_control
    from streams.kafka.admin import broker_answers
    from streams.worker.app import build_app, quiet_worker
    from streams.worker.datadir import claim_data_dir
    from streams.worker.observe import PolicyState, attach_web
    from streams.worker.policy_poll import attach_policy_control

    # Issue F: validated and (with signers configured) signature-checked, before anything
    # connects; every load is recorded on the decisions topic; reloads when it changes.
    # Rollback protection compares with the policy this worker last put in force, kept in
    # its data dir (streams.control.rollback: the choice and its limit).
    control = load_policy_control(settings.kafka, settings.topics, settings.policy,
                                  args.policy or settings.policy.policy_file,
                                  settings.worker.data_dir / IN_FORCE_FILE)
    # faust would retry a wrong address or protocol for ever, with aiokafka's error line
    # every half second and no word of the setting: ask once, with a deadline.
    asyncio.run(broker_answers(settings.kafka, settings.topics))
    with claim_data_dir(settings.worker.data_dir):
        control.remember()  # its load record is on the decisions topic
        app = build_app(settings.kafka, settings.topics, settings.worker, control.policy)
        state = PolicyState(control.policy())
        state.loaded(control.policy())
        attach_policy_control(app, settings.topics, settings.policy, control, state)
        attach_web(app, settings.topics, settings.web, state)
        worker = quiet_worker(app, settings.log_level)
        worker.execute_from_commandline()
    return 0


def _stop_before_start(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)
