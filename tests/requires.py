"""What a test needs that a laptop may lack (a stack, a broker, a tool): skipped there, a
failure when ``CI`` is set, where ``.ci/run`` installs and starts everything."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["unavailable"]


def unavailable(message: str) -> NoReturn:
    """Skip the test saying ``message``; fail it instead when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {message}", pytrace=False)
    pytest.skip(message)
