"""Instruction-count harness for A/B of policy ``step()`` (issue M, the request path).

Run from the root of the tree to measure (it imports that tree's code):

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.step .venv/bin/python \
        bench/step_ab.py 5000 1000 step
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.none .venv/bin/python \
        bench/step_ab.py 5000 1000 none

and take the difference of the two ``Collected`` counts over the event count: the
instructions ``step()`` spends per event (stored values kept as ``bench/core.py`` keeps
them), repeatable on a loaded machine where wall and CPU times are not. ``profile`` in
place of ``step`` prints a cProfile of the same loop instead. A fourth argument
``catalog`` adds a catalog naming every resource of the bench (``glob = "res-*"``, an
owner, the claims' own sensitivity: every claim stands), so each request takes the catalog's
path. The old tree needs only this file copied in (``bench/core.generate`` makes the same
events).
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import sys
from importlib import resources
from pathlib import Path

sys.path[:0] = [str(Path.cwd()), str(Path.cwd() / "bench")]

from core import generate  # noqa: E402 - the tree under test, by path

from policy import step  # noqa: E402
from schemas.decisions import Cause  # noqa: E402
from schemas.events import InputEvent  # noqa: E402
from schemas.policy import LoadedPolicy, parse_policy  # noqa: E402
from schemas.state import StoredSubject  # noqa: E402


def run(events: list[InputEvent], policy: LoadedPolicy) -> None:
    """Every event through ``step()``, each subject's stored value kept."""
    states: dict[str, StoredSubject] = {}
    for event in events:
        key = event.subject.id
        result = step(states.get(key), event, policy,
                      Cause(event_id=event.event_id, type=event.type))
        if result.changed:
            states[key] = result.stored


def main() -> None:
    count, subjects, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    text = resources.files("policy").joinpath("default.toml").read_text()
    if sys.argv[4:] == ["catalog"]:
        text = text.replace("[defaults.limits]", '[[defaults.catalog.resources]]\nglob = "res-*"'
                            '\nsensitivity = "low"\nowner = "bench"\n\n[defaults.limits]')
    policy = parse_policy(text)
    events = generate(count, subjects)
    gc.collect()
    gc.freeze()
    if mode == "step":
        run(events, policy)
    elif mode == "profile":
        profiler = cProfile.Profile()
        profiler.runcall(run, events, policy)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    # "none": the baseline, everything but the stepping


if __name__ == "__main__":
    main()
