"""The metric names ops/prometheus/ (alert rules, dashboard) uses, and the names a
``/metrics`` page exposes, for tests that compare the two."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.paths import REPO

__all__ = ["ALERTS", "DASHBOARD", "exposed_names", "used_names"]

ALERTS = REPO / "ops" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "ops" / "prometheus" / "dashboard.json"

# Sample names a family of each type exposes, from its family name.
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
             "info": ("_info",), "gauge": ("",), "summary": ("_sum", "_count", "")}


def _expressions() -> Iterable[str]:
    for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]
    for panel in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]:
        for target in panel["targets"]:
            yield target["expr"]


def used_names() -> set[str]:
    """Every ``jitwatch_*`` metric name the alert rules and the dashboard query."""
    return {name for expr in _expressions() for name in re.findall(r"\bjitwatch_\w+", expr)}


def exposed_names(pages: Iterable[str]) -> set[str]:
    """Every sample name the ``/metrics`` pages can expose (a labelled family with no
    sample yet still declares its type)."""
    names: set[str] = set()
    for page in pages:
        for family in text_string_to_metric_families(page):
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names
