"""``python -m streams.cli``: the ``jitwatch`` command (tests and benchmarks start it so)."""

import contextlib
import sys

from streams.cli.main import main

with contextlib.suppress(KeyboardInterrupt):
    sys.exit(main())
