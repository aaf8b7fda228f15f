"""``/metrics``, ``/livez`` and ``/readyz`` of one process, on a small aiohttp server.

The worker, the audit sink and the notary each run one :class:`WebServer` on the loop they
already have (aiohttp comes with faust), so the three answer alike. The worker does not use
faust's own web server: the sink and the notary have no faust, and one server for all three
is one implementation to keep.

A port that cannot be bound is logged and the process goes on without its web server:
metrics are for watching enforcement, never a reason to stop it; Prometheus then reports
the target down (``up == 0``), which is alerted on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, generate_latest

__all__ = ["STALLED_S", "Health", "Progress", "WebServer", "serving"]

log = logging.getLogger(__name__)

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
"""Prometheus' text format 0.0.4, which every Prometheus 2.x reads (Debian 12 ships 2.42);
jitwatch's metric names need none of format 1.0.0's escaping."""

Check = Callable[[], str | None]
"""A readiness condition: None when it holds, else why not (one line, shown in ``/readyz``)."""


STALLED_S = 30.0
"""A loop (the audit sink's, the notary's) that has not come round for this long is not
ready: it waits out Redis or Kafka, and its log says which."""


@dataclass
class Progress:
    """When a process's main loop last came round: :meth:`beat` each turn."""

    last: float = field(default_factory=time.monotonic)

    def beat(self) -> None:
        """The loop came round."""
        self.last = time.monotonic()

    def problem(self) -> str | None:
        """A readiness condition: None while the loop turns, else how long it has not."""
        idle = time.monotonic() - self.last
        return None if idle < STALLED_S else f"no progress for {idle:.0f} s (see the log)"


@dataclass
class Health:
    """The readiness conditions of one process, asked at each ``/readyz`` (and scrape).

    Conditions are asked, not pushed: each reads the process's own state when asked, so
    the answer is never older than the request.
    """

    checks: dict[str, Check] = field(default_factory=dict)

    def require(self, name: str, check: Check) -> None:
        """Add a condition; ``name`` prefixes its reason in the body."""
        self.checks[name] = check

    def problems(self) -> list[str]:
        """Why the process is not ready: empty when it is."""
        found = []
        for name, check in self.checks.items():
            try:
                reason = check()
            except Exception as exc:  # noqa: BLE001 - a failing check is a reason, not a crash
                reason = f"check failed: {exc.__class__.__name__}: {exc}"
            if reason is not None:
                found.append(f"{name}: {reason}")
        return found


class WebServer:
    """Serves one registry's metrics and one :class:`Health` on ``host:port``.

    ``before_scrape`` callables run before each ``/metrics`` answer: gauges that are cheap
    to read but not worth a timer (lag, recovery state) are set there. ``ready`` is set to
    1 or 0 at each scrape, as ``/readyz`` would answer (alerts need it as a metric).
    """

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Health,
                 ready: Gauge | None = None,
                 before_scrape: list[Callable[[], None]] | None = None) -> None:
        self.host = host
        self.port = port
        self.registry = registry
        self.health = health
        self.before_scrape = list(before_scrape or [])
        if ready is not None:
            gauge = ready
            self.before_scrape.append(lambda: gauge.set(0 if health.problems() else 1))
        self._runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        for refresh in self.before_scrape:
            try:
                refresh()
            except Exception:  # a stale gauge is better than no metrics at all
                log.exception("refreshing metrics before a scrape failed")
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": TEXT_FORMAT})

    async def _livez(self, request: web.Request) -> web.Response:
        # The loop answered: the process is not wedged. Not ready is not dead: a worker
        # recovering its table must not be restarted for it.
        return web.Response(text="live\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        problems = self.health.problems()
        if problems:
            body = "not ready\n" + "".join(f"- {problem}\n" for problem in problems)
            return web.Response(status=503, text=body)
        return web.Response(text="ready\n")

    async def start(self) -> bool:
        """Bind and serve; False (logged) when the port cannot be bound. Port 0 takes a
        free port, which is then :attr:`port` (tests, several processes on one host)."""
        runner = web.AppRunner(self._app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            log.error("metrics and health probes NOT served: cannot bind %s:%d (%s); the "
                      "process goes on without them", self.host, self.port, exc.strerror)
            await runner.cleanup()
            return False
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("metrics on http://%s:%d/metrics, probes /livez and /readyz", self.host,
                 self.port)
        return True

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@contextlib.asynccontextmanager
async def serving(server: WebServer | None) -> AsyncIterator[WebServer | None]:
    """Serve ``server`` (if any) for the duration of the block: the sink's and the
    notary's loops run inside it."""
    if server is None:
        yield None
        return
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
