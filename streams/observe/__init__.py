"""What operators see of a running process (issue K): Prometheus metrics and health probes.

One package for the worker, the audit sink and the notary: :mod:`streams.observe.metrics`
defines every metric, :mod:`streams.observe.web` serves ``/metrics``, ``/livez`` and
``/readyz``. Values are recorded at the edges (``streams.worker``, ``streams.audit``),
never in the pure layers (``policy/``, ``streams.engine``). Imports neither faust nor any
other jitwatch process package, so all three can use it.
"""

from streams.observe.web import Health, Progress, WebServer, serving

__all__ = ["Health", "Progress", "WebServer", "serving"]
