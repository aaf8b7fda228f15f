"""The worker's metrics and health probes (issue K): recorded here, at the faust edge.

:func:`record_batch` counts what a batch did once Kafka acknowledged it; :func:`attach_web`
serves ``/metrics``, ``/livez`` and ``/readyz`` (:mod:`streams.observe.web`) with the
worker's readiness: policy in force not refused, table recovered, partitions assigned.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import faust
import mode
import orjson
from faust.types import TP

from schemas.policy import LoadedPolicy
from streams.engine.plan import BatchPlan, Record
from streams.observe import Health, WebServer
from streams.observe.metrics import (
    BATCH_EVENTS,
    DEAD_LETTERS,
    DECISION_LATENCY,
    DECISIONS,
    EVENTS_IN,
    EXPIRY_LATENESS,
    INPUT_LAG,
    PARTITIONS_ASSIGNED,
    POLICY_INFO,
    POLICY_REFUSED,
    POLICY_RELOAD_REFUSALS,
    TABLE_RECOVERING,
    WORKER,
    WORKER_READY,
    action_label,
    event_type_label,
    notice_sent,
    rule_label,
    tenant_label,
)
from streams.settings import TopicSettings, WebSettings

__all__ = ["PolicyState", "attach_web", "record_batch"]

log = logging.getLogger(__name__)

UNREADABLE = "unreadable"
"""The event type label of an input whose ``type`` could not be read."""


def record_batch(records: Sequence[Record], plan: BatchPlan, acked_at: float,
                 policy: LoadedPolicy, topics: TopicSettings, max_event_bytes: int) -> None:
    """Count a batch whose outbound records Kafka acknowledged at ``acked_at`` (epoch s)."""
    BATCH_EVENTS.observe(len(records))
    # Counted per batch, then added once per label set: a child lookup and its lock per
    # record was most of this function's time.
    events = Counter((record.topic, _event_type(record.value, max_event_bytes))
                     for record in records)
    decisions: Counter[tuple[str, str, str]] = Counter()
    dead: Counter[str] = Counter()
    ticks_seen: set[int] = set()
    for out in plan.outbound:
        if out.topic == topics.topic_decisions:
            decision = orjson.loads(out.value or b"{}")
            rule = decision.get("rule") or {}
            decisions[(action_label(decision.get("action")), rule_label(rule.get("id")),
                       tenant_label(decision.get("tenant"), policy))] += 1
            source = records[out.source]
            if source.timestamp is not None:  # the broker's time (LogAppendTime)
                DECISION_LATENCY.observe(max(0.0, acked_at - source.timestamp))
            if source.topic == topics.topic_commands and out.source not in ticks_seen:
                ticks_seen.add(out.source)  # one tick may end several grants: once each
                _observe_lateness(source.value, acked_at)
        elif out.topic == topics.topic_deadletter:
            error_class = dict(out.headers or []).get("error.class", b"unknown")
            dead[error_class.decode("utf-8", "replace")] += 1
    if plan.notices:  # issue J: sent to jit.notices, never counted as decisions
        notice_sent(plan.notices)
    for (topic, kind), count in events.items():
        EVENTS_IN.labels(topic, kind).inc(count)
    for labels, count in decisions.items():
        DECISIONS.labels(*labels).inc(count)
    for reason, count in dead.items():
        DEAD_LETTERS.labels(reason).inc(count)


def _event_type(value: bytes | None, max_event_bytes: int) -> str:
    # A second parse of the input, at the edge: the pure planner keeps no counters. An
    # input too large to decide is not parsed for a label either.
    if not value or len(value) > max_event_bytes:
        return UNREADABLE
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return UNREADABLE
    return event_type_label(event.get("type")) if isinstance(event, dict) else UNREADABLE


def _observe_lateness(tick: bytes | None, acked_at: float) -> None:
    # A tick's ``at`` is the deadline it ends (streams.engine.codec.encode_tick).
    try:
        deadline = datetime.fromisoformat(orjson.loads(tick or b"{}")["at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return
    EXPIRY_LATENESS.observe(max(0.0, acked_at - deadline.timestamp()))


@dataclass
class PolicyState:
    """What the worker's readiness knows of its policy: the one in force, and why the
    newest file was refused (None when it was not)."""

    in_force: LoadedPolicy
    refused: str | None = None

    def loaded(self, policy: LoadedPolicy) -> None:
        """A policy was put in force."""
        self.in_force, self.refused = policy, None
        POLICY_INFO.info({"version": policy.ref.version, "sha256": policy.ref.sha256})
        POLICY_REFUSED.set(0)

    def refuse(self, reason: str | None) -> None:
        """A changed policy file was refused; the one before stays in force."""
        self.refused = reason or "refused"
        POLICY_RELOAD_REFUSALS.inc()
        POLICY_REFUSED.set(1)

    def problem(self) -> str | None:
        """The readiness condition: a refused file means the policy on disk is not the
        one enforced, which an operator must see."""
        if self.refused is None:
            return None
        return (f"the changed policy file was refused ({self.refused}); version "
                f"{self.in_force.ref.version} stays in force")


def attach_web(app: faust.App, topics: TopicSettings, web: WebSettings,
               policy: PolicyState) -> WebServer:
    """Serve the worker's metrics and probes from its faust app's start."""
    health = Health()
    health.require("policy", policy.problem)
    health.require("recovery", lambda: _recovering(app))
    health.require("partitions", lambda: None if _owned(app, topics) else
                   "no input partition assigned (yet)")
    server = WebServer(web.web_host, web.web_port, WORKER, health, ready=WORKER_READY,
                       before_scrape=[lambda: _refresh(app, topics)])

    # A dependency of the app starts with it, before recovery: faust's own tasks
    # (app.task) start only once recovery is done, when "recovering" could not be seen.
    app.add_dependency(_Serving(server))
    return server


class _Serving(mode.Service):
    """The web server as a child service of the faust app: started and stopped with it."""

    def __init__(self, server: WebServer) -> None:
        super().__init__()
        self.server = server

    async def on_start(self) -> None:
        await self.server.start()

    async def on_stop(self) -> None:
        await self.server.stop()


def _recovering(app: faust.App) -> str | None:
    # faust clears `rebalancing` at "Worker ready", after the table is recovered and the
    # streams are sought to their committed offsets: only then are inputs decided.
    if getattr(app, "rebalancing", False):
        return "the group is rebalancing (streams not resumed yet)"
    tables: Any = app.tables  # faust types it as TableManagerT, which names no recovery
    recovery = tables.recovery
    if recovery.in_recovery or not recovery.completed.is_set():
        return "recovering the table from its changelog"
    return None


def _owned(app: faust.App, topics: TopicSettings) -> list[int]:
    try:
        assignment = app.consumer.assignment()
    except Exception:  # noqa: BLE001 - no consumer yet: nothing owned
        return []
    return sorted(tp.partition for tp in assignment if tp.topic == topics.topic_requests)


def _refresh(app: faust.App, topics: TopicSettings) -> None:
    # Read at scrape time: the consumer's last fetched end offsets and the group's
    # committed offsets (no broker call), as the expiry gate reads them.
    owned = _owned(app, topics)
    PARTITIONS_ASSIGNED.set(len(owned))
    TABLE_RECOVERING.set(0 if _recovering(app) is None else 1)
    committed: dict[TP, int | None] = getattr(app.consumer, "_committed_offset", {})
    INPUT_LAG.clear()  # partitions moved to another worker are no longer this one's
    for topic in (topics.topic_requests, topics.topic_sessions, topics.topic_commands,
                  topics.topic_repartition):
        for number in owned:
            tp = TP(topic, number)
            try:
                end: Any = app.consumer.highwater(tp)
            except AssertionError:  # not assigned (any more): a rebalance meanwhile
                continue
            if end is None:
                continue
            INPUT_LAG.labels(topic, str(number)).set(max(0, end - (committed.get(tp) or 0)))
