"""ops/prometheus/: the scrape config and rules load, the alert rules pass their promtool
unit tests, and every metric they and the dashboard name is one jitwatch defines (the
integration test checks the same against live processes)."""

from __future__ import annotations

import subprocess

from prometheus_client import generate_latest

from streams.observe.metrics import AUDIT_SINK, NOTARY, WORKER
from tests.ops.metric_names import exposed_names, used_names
from tests.ops.tools import require_tool
from tests.paths import REPO

PROMETHEUS = REPO / "ops" / "prometheus"


def _promtool(*args: str) -> str:
    promtool = require_tool("promtool")
    result = subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_scrape_config_and_rules_load() -> None:
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")
    assert "7 rules found" in _promtool("check", "rules", "alerts.yml")


def test_alert_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts.test.yml")


def test_every_alert_has_a_unit_test() -> None:
    rules = (PROMETHEUS / "alerts.yml").read_text(encoding="utf-8")
    tests = (PROMETHEUS / "alerts.test.yml").read_text(encoding="utf-8")
    alerts = {line.split(":", 1)[1].strip() for line in rules.splitlines()
              if line.strip().startswith("- alert:")}
    tested = {line.split(":", 1)[1].strip() for line in tests.splitlines()
              if line.strip().startswith("alertname:")}
    assert alerts == tested
    assert len(alerts) == 7


def test_alerts_and_dashboard_name_only_defined_metrics() -> None:
    defined = exposed_names(generate_latest(registry).decode()
                            for registry in (WORKER, AUDIT_SINK, NOTARY))
    assert used_names() - defined == set()
    assert len(used_names()) >= 20
