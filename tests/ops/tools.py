"""The Debian tools the ops tests run (ops/install-tools installs them): skipped on a
laptop without them, a failure when CI is set."""

from __future__ import annotations

import shutil

from tests.requires import unavailable

__all__ = ["require_tool"]


def require_tool(name: str) -> str:
    """The path of ``name``; skips (fails with CI set) when it is not installed."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed; ops/install-tools installs it"
    unavailable(message)
