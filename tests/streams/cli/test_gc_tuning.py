"""Process setup shared by every jitwatch command."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.cli.gc_tuning import GC_THRESHOLDS, tune_gc
from streams.cli.main import main


@pytest.fixture(autouse=True)
def _restore_gc_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's defaults, so the tests see the change
    yield
    gc.set_threshold(*saved)


def test_tune_gc_sets_the_thresholds() -> None:
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.isenabled()


def test_every_command_runs_with_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "policy/default.toml"]) == 0
    assert gc.get_threshold() == GC_THRESHOLDS
