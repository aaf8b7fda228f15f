"""Summary lines of the fault scenarios: one per scenario, printed at the end of pytest's
output and appended to ``JITWATCH_FAULTS_RESULTS`` when set (``ops/faults`` prints it)."""

from __future__ import annotations

import os

__all__ = ["LINES", "summary"]

LINES: list[str] = []
"""Every summary line of this pytest session, in order."""


def summary(scenario: str, *, events: int, faults: int, lost: int, duplicates: int,
            seconds: float, passed: bool = True, detail: str = "") -> str:
    """Record ``scenario: passed, N events, M faults, L lost, D duplicates`` (issue E's form)
    with the run's duration and details after it."""
    line = (f"{scenario}: {'passed' if passed else 'FAILED'}, {events} events, {faults} faults, "
            f"{lost} lost, {duplicates} duplicates  ({seconds:.0f} s"
            f"{'; ' + detail if detail else ''})")
    LINES.append(line)
    print(line, flush=True)
    results = os.environ.get("JITWATCH_FAULTS_RESULTS")
    if results:
        with open(results, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    return line
