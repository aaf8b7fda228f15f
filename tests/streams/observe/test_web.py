"""The one web server of the worker, the audit sink and the notary: metrics and probes."""

from __future__ import annotations

import socket

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.observe import Health, Progress, WebServer, serving
from streams.observe.web import STALLED_S


async def _get(server: WebServer, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{server.port}{path}") as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def test_readyz_says_why_not_and_livez_stays_live() -> None:
    registry = CollectorRegistry()
    ready = Gauge("jitwatch_ready", "ready", registry=registry)
    Counter("jitwatch_things", "things", registry=registry).inc(3)
    recovering = {"now": True}
    health = Health()
    health.require("recovery", lambda: "recovering the table" if recovering["now"] else None)
    health.require("broken", lambda: None)
    async with serving(WebServer("127.0.0.1", 0, registry, health, ready=ready)) as server:
        assert server is not None
        assert server.port != 0, "the port the OS picked"
        status, _, body = await _get(server, "/readyz")
        assert (status, body) == (503, "not ready\n- recovery: recovering the table\n")
        assert (await _get(server, "/livez"))[0] == 200, "not ready is not dead"
        status, content_type, body = await _get(server, "/metrics")
        assert status == 200
        assert content_type.startswith("text/plain; version=0.0.4")
        assert "jitwatch_ready 0.0" in body
        assert "jitwatch_things_total 3.0" in body
        recovering["now"] = False
        assert (await _get(server, "/readyz"))[::2] == (200, "ready\n")
        assert "jitwatch_ready 1.0" in (await _get(server, "/metrics"))[2]


async def test_a_failing_check_is_a_reason_not_a_crash() -> None:
    health = Health()
    health.require("consumer", lambda: str(1 / 0))
    assert health.problems() == ["consumer: check failed: ZeroDivisionError: division by zero"]


async def test_a_port_taken_is_logged_and_the_process_goes_on(caplog: object) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WebServer("127.0.0.1", port, CollectorRegistry(), Health())
        assert await server.start() is False
        await server.stop()  # nothing to stop: no error either
    assert "NOT served" in str(getattr(caplog, "text", ""))


def test_a_loop_that_stops_coming_round_is_not_ready() -> None:
    progress = Progress()
    assert progress.problem() is None
    progress.last -= STALLED_S + 1
    assert (progress.problem() or "").startswith("no progress for 31 s")
    progress.beat()
    assert progress.problem() is None
