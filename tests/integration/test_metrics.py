"""Metrics and probes of running processes on the real stack (issue K): a worker, an audit
sink and a notary of this module's own, every metric the alert rules and the dashboard name
on their live ``/metrics``, a real Prometheus (Debian's) scraping them every second, and
readiness that follows a refused policy."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests import factories
from tests.integration.conftest import BOOTSTRAP, Stack, stop_all
from tests.ops.metric_names import ALERTS, exposed_names, used_names
from tests.ops.tools import require_tool
from tests.paths import REPO

pytestmark = [pytest.mark.integration]

PARTITIONS = 4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def _answering(url: str, status: int) -> str | None:
    """The body of ``url`` when it answers ``status``, else None."""
    got, body = _get(url)
    return body if got == status else None


def _until(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout_s} s; last: {last!r}")


@dataclass
class Observed:
    """This module's processes and where each serves its metrics."""

    stack: Stack
    ports: dict[str, int]
    policy: Path

    def url(self, process: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[process]}{path}"


@pytest.fixture(scope="module")
def observed(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """A worker, a sink and a notary on topics, groups and audit keys of their own."""
    run = f"m-{uuid.uuid4().hex[:6]}"
    logs = tmp_path_factory.mktemp("metrics-logs")
    policy = tmp_path_factory.mktemp("metrics-policy") / "policy.toml"
    policy.write_text(resources.files("policy").joinpath("default.toml").read_text())
    ports = {name: _free_port() for name in ("worker", "sink", "notary")}
    env = {
        **stack.env,
        "JITWATCH_APP_ID": f"jitwatch-{run}",
        "JITWATCH_TOPIC_REQUESTS": f"{run}.requests",
        "JITWATCH_TOPIC_SESSIONS": f"{run}.sessions",
        "JITWATCH_TOPIC_DECISIONS": f"{run}.decisions",
        "JITWATCH_TOPIC_DEADLETTER": f"{run}.deadletter",
        "JITWATCH_TOPIC_AUDIT_CHECKPOINTS": f"{run}.audit-checkpoints",
        "JITWATCH_TOPIC_PARTITIONS": str(PARTITIONS),
        "JITWATCH_AUDIT_GROUP": f"jitwatch-audit-{run}",
        "JITWATCH_AUDIT_KEY_PREFIX": f"jitwatch:{run}:audit",
        "JITWATCH_AUDIT_CHECKPOINT_INTERVAL_S": "1",
        "JITWATCH_DATA_DIR": str(tmp_path_factory.mktemp("metrics-data")),
        "JITWATCH_POLICY_FILE": str(policy),
        "JITWATCH_POLICY_POLL_S": "0.5",
        "JITWATCH_WEB_PORT": str(ports["worker"]),
        "JITWATCH_AUDIT_WEB_PORT": str(ports["sink"]),
        "JITWATCH_NOTARY_WEB_PORT": str(ports["notary"]),
    }
    created = subprocess.run([sys.executable, "-m", "streams.cli", "topics",
                              "create"], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    own = Stack(run=run, env=env)
    own.start("worker", logs)
    own.start("audit-sink", logs)
    own.start("audit", logs, "notary")
    try:
        yield Observed(own, ports, policy)
    finally:
        stop_all(own.processes)


async def _publish(observed: Observed, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        for number in range(count):
            subject = f"{observed.stack.run}-{number}"
            event = factories.raw_request(f"r-{number}", [("db", "prod")], subject=subject)
            await producer.send_and_wait(observed.stack.requests, orjson.dumps(event),
                                         key=subject.encode())
        # One that cannot be decided: a dead letter, counted by its error class.
        await producer.send_and_wait(observed.stack.requests, b"{not json", key=b"nobody")
    finally:
        await producer.stop()


def test_each_process_becomes_ready_and_serves_every_metric_ops_names(
        observed: Observed) -> None:
    for process in ("worker", "sink", "notary"):
        url = observed.url(process, "/readyz")
        assert _until(lambda url=url: _answering(url, 200), 120, f"{process} ready") == "ready\n"
        assert _get(observed.url(process, "/livez")) == (200, "live\n")
    pages = [_get(observed.url(process, "/metrics"))[1]
             for process in ("worker", "sink", "notary")]
    missing = used_names() - exposed_names(pages)
    assert missing == set(), "ops/prometheus names metrics no process exposes"


def test_a_real_prometheus_scrapes_decisions_and_lag(observed: Observed,
                                                      tmp_path: Path) -> None:
    binary = require_tool("prometheus")
    port = int(os.environ.get("JITWATCH_TEST_PROMETHEUS_PORT") or _free_port())
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    jobs = {"jitwatch-worker": "worker", "jitwatch-audit-sink": "sink",
            "jitwatch-notary": "notary"}
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": ["alerts.yml"],
              "scrape_configs": [{"job_name": job, "static_configs": [
                  {"targets": [f"127.0.0.1:{observed.ports[process]}"]}]}
                  for job, process in jobs.items()]}
    (tmp_path / "prometheus.yml").write_bytes(orjson.dumps(config))  # JSON is YAML
    log = (tmp_path / "prometheus.log").open("wb")
    server = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"

    def query(promql: str) -> list[dict[str, Any]]:
        status, body = _get(f"{api}/query?query={urllib.parse.quote(promql)}")
        return orjson.loads(body)["data"]["result"] if status == 200 else []

    try:
        _until(lambda: len(query('up{job=~"jitwatch-.*"} == 1')) == 3, 60,
               "Prometheus scraping all three processes")
        count = 20
        asyncio.run(_publish(observed, count))
        decided = _until(lambda: query(f"sum(jitwatch_decisions_total) >= {count}"), 60,
                         f"{count} decisions in Prometheus")
        assert float(decided[0]["value"][1]) == count
        lag = query("jitwatch_input_lag_messages")
        assert {(s["metric"]["topic"], s["metric"]["partition"]) for s in lag} >= {
            (observed.stack.requests, str(p)) for p in range(PARTITIONS)}
        _until(lambda: query("sum(jitwatch_input_lag_messages) == 0"), 60,
               "input lag back to 0 once all is decided and committed")
        _until(lambda: query('jitwatch_dead_letters_total{error_class="invalid-json"} == 1'),
               30, "the dead letter counted")
        _until(lambda: query(f"sum(jitwatch_audit_entries_appended_total) >= {count}"), 60,
               "the sink's appends")
        assert query("histogram_quantile(0.99, sum by (le) "
                     "(rate(jitwatch_decision_latency_seconds_bucket[1m]))) < 10")
        rules = orjson.loads(_get(f"{api}/rules")[1])["data"]["groups"][0]["rules"]
        assert [rule["health"] for rule in rules] == ["ok"] * 7
        assert not [rule["name"] for rule in rules if rule["state"] == "firing"
                    and rule["name"] != "JitwatchDeadLettersRising"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_a_refused_policy_makes_the_worker_not_ready_until_undone(observed: Observed) -> None:
    good = observed.policy.read_text()
    observed.policy.write_text(good.replace("[defaults.ttl]\n", "[defaults.ttl]\nnope = 1\n", 1))
    readyz = observed.url("worker", "/readyz")
    body = _until(lambda: _answering(readyz, 503), 30, "not ready after a refused policy")
    assert "policy: the changed policy file was refused" in body
    metrics = _get(observed.url("worker", "/metrics"))[1]
    assert "jitwatch_policy_refused 1.0" in metrics
    assert "jitwatch_policy_reload_refusals_total 1.0" in metrics
    observed.policy.write_text(good)
    _until(lambda: _answering(readyz, 200), 30, "ready again once the file is in force")
