"""Where the repository's files are, for tests that run its scripts or read its ops files."""

from __future__ import annotations

from pathlib import Path

__all__ = ["REPO"]

REPO = Path(__file__).resolve().parents[1]
"""The repository root (tests run from a checkout, never from an installed package)."""
