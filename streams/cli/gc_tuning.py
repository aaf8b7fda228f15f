"""Garbage collector thresholds, set for every ``jitwatch`` command.

CPython's defaults (a young collection every 700 net container allocations, a full one
every 100 young ones) suit small scripts. The worker and the pure core allocate several
hundred containers per event (decoded events, verdicts, state tuples) that almost all die
young, and each full collection walks every live object: measured on this project's
machine (README, Benchmarks), the collector took 19 % of the core's CPU time over 200k
events, and the worker paused 55-80 ms per full collection, several times in a 10 s
run. Larger thresholds make young collections rare (each still short: it walks at most
the young objects) and full ones rarer still; cyclic garbage lives a little longer, which
costs a few MB at most.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

GC_THRESHOLDS = (50_000, 20, 100)
"""Young collection every 50,000 net container allocations; the middle generation every 20
young ones; the full heap every 100 of those (and only when a quarter of it is new)."""


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS` for this process (idempotent)."""
    gc.set_threshold(*GC_THRESHOLDS)
