"""Every Prometheus metric jitwatch exposes, one registry per process (issue K).

Names follow Prometheus' conventions: prefix ``jitwatch_``, base units (seconds, messages),
counters end in ``_total`` (the client adds it). Each process has a registry of its own
(:data:`WORKER`, :data:`AUDIT_SINK`, :data:`NOTARY`), so a worker's ``/metrics`` shows no
notary gauge stuck at zero. ops/prometheus/ (alerts, dashboard) names these metrics; a test
checks every name it uses against a live ``/metrics``.

Label values stay bounded whatever the input: tenants only as the policy in force names
them (else ``other``), rule ids only as registered (else ``other``), event types only as
the schema defines them, partitions as configured; never a subject id, request id or
anything else an event sender chooses.
"""

from __future__ import annotations

from typing import get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from policy.rules import RULES
from schemas.decisions import Action
from schemas.events import ClockTick, InputEvent
from schemas.policy import LoadedPolicy

__all__ = [
    "AUDIT_APPENDED",
    "AUDIT_LAG",
    "AUDIT_SINK",
    "AUDIT_SINK_READY",
    "BATCH_EVENTS",
    "DEAD_LETTERS",
    "DECISIONS",
    "DECISION_LATENCY",
    "EVENTS_IN",
    "EXPIRY_LATENESS",
    "INPUT_LAG",
    "NOTARY",
    "NOTARY_CHECKPOINTS",
    "NOTARY_CHECKPOINT_AGE",
    "NOTARY_CHECKPOINT_INTERVAL",
    "NOTARY_READY",
    "NOTICES_SENT",
    "OTHER",
    "PARTITIONS_ASSIGNED",
    "POLICY_INFO",
    "POLICY_REFUSED",
    "POLICY_RELOAD_REFUSALS",
    "TABLE_RECOVERING",
    "WORKER",
    "WORKER_READY",
    "action_label",
    "event_type_label",
    "notice_sent",
    "rule_label",
    "tenant_label",
]

OTHER = "other"
"""The label value of anything outside the bounded set a label may take."""

_ACTIONS = frozenset(get_args(Action))
_RULE_IDS = frozenset(rule.id for rule in RULES)
# Each event model's ``type`` literal: the input union's members, and the watcher's tick.
_EVENT_TYPES = frozenset(
    get_args(model.model_fields["type"].annotation)[0]
    for model in (*get_args(get_args(InputEvent)[0]), ClockTick))


# A ``_created`` series per counter and histogram doubles what Prometheus stores for a
# start time that ``process_start_time_seconds`` already gives.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the client


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    # CPU, memory, open files and start time of the process (process_*, python_info): the
    # usual companions of `up` on any dashboard.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


WORKER = _registry()
"""The enforcement worker's metrics."""
AUDIT_SINK = _registry()
"""The audit sink's metrics."""
NOTARY = _registry()
"""The notary's metrics."""

_READY = "1 when /readyz answers 200 (ready), 0 when it answers 503; why is in its body."
WORKER_READY = Gauge("jitwatch_ready", _READY, registry=WORKER)
AUDIT_SINK_READY = Gauge("jitwatch_ready", _READY, registry=AUDIT_SINK)
NOTARY_READY = Gauge("jitwatch_ready", _READY, registry=NOTARY)

# The worker.
DECISIONS = Counter(
    "jitwatch_decisions", "Verdicts acknowledged by Kafka, by action, rule id and tenant.",
    ["action", "rule", "tenant"], registry=WORKER)
DECISION_LATENCY = Histogram(
    "jitwatch_decision_latency_seconds",
    "From the broker time of a verdict's input record to Kafka acknowledging the verdict.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=WORKER)
EXPIRY_LATENESS = Histogram(
    "jitwatch_expiry_lateness_seconds",
    "From a grant's deadline to Kafka acknowledging the verdicts of its expiry tick.",
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0),
    registry=WORKER)
EVENTS_IN = Counter(
    "jitwatch_events_in", "Input records taken into a batch, by topic and event type "
    "('unreadable' when no type could be read).", ["topic", "type"], registry=WORKER)
DEAD_LETTERS = Counter(
    "jitwatch_dead_letters", "Inputs sent to the dead letter topic, by error class.",
    ["error_class"], registry=WORKER)
BATCH_EVENTS = Histogram(
    "jitwatch_batch_events", "Input records per decided batch.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000), registry=WORKER)
INPUT_LAG = Gauge(
    "jitwatch_input_lag_messages", "Records of an owned input partition not yet committed "
    "by the group: end offset minus committed offset.", ["topic", "partition"],
    registry=WORKER)
TABLE_RECOVERING = Gauge(
    "jitwatch_table_recovering", "1 while the worker recovers its table from the changelog "
    "(or rebalances), else 0.", registry=WORKER)
PARTITIONS_ASSIGNED = Gauge(
    "jitwatch_partitions_assigned", "Input partitions (of the requests topic) this worker "
    "owns.", registry=WORKER)
POLICY_INFO = Info(
    "jitwatch_policy", "The policy in force: its version and sha256.", registry=WORKER)
POLICY_RELOAD_REFUSALS = Counter(
    "jitwatch_policy_reload_refusals", "Changed policy files refused (invalid, unsigned, "
    "rolled back); the policy before stays in force.", registry=WORKER)
POLICY_REFUSED = Gauge(
    "jitwatch_policy_refused", "1 while the newest policy file is one that was refused.",
    registry=WORKER)
NOTICES_SENT = Counter(
    "jitwatch_notices_sent", "Notices sent to subjects and reviewers (jit.notices).",
    registry=WORKER)

# The audit sink.
AUDIT_APPENDED = Counter(
    "jitwatch_audit_entries_appended", "Entries the sink appended to a partition's chain.",
    ["partition"], registry=AUDIT_SINK)
AUDIT_LAG = Gauge(
    "jitwatch_audit_lag_messages", "Records of a decisions partition not yet in its chain: "
    "end offset minus the offset after the chain's head.", ["partition"],
    registry=AUDIT_SINK)

# The notary.
NOTARY_CHECKPOINT_AGE = Gauge(
    "jitwatch_notary_checkpoint_age_seconds", "Seconds since the partition's last "
    "checkpoint while its chain holds entries not yet signed; 0 when all are signed.",
    ["partition"], registry=NOTARY)
NOTARY_CHECKPOINT_INTERVAL = Gauge(
    "jitwatch_notary_checkpoint_interval_seconds", "The notary's checkpoint interval "
    "(JITWATCH_AUDIT_CHECKPOINT_INTERVAL_S): a chain that grew is signed within it.",
    registry=NOTARY)
NOTARY_CHECKPOINTS = Counter(
    "jitwatch_notary_checkpoints", "Checkpoints signed, by partition.", ["partition"],
    registry=NOTARY)


def action_label(action: object) -> str:
    """A decision's action as a label (one of the six, else ``other``)."""
    return action if isinstance(action, str) and action in _ACTIONS else OTHER


def rule_label(rule_id: object) -> str:
    """A registered rule id, else ``other``."""
    return rule_id if isinstance(rule_id, str) and rule_id in _RULE_IDS else OTHER


def tenant_label(tenant: object, policy: LoadedPolicy) -> str:
    """A tenant the policy in force names (or ``default``), else ``other``: tenants the
    policy does not name come from event senders and are unbounded."""
    if isinstance(tenant, str) and (tenant == "default" or tenant in policy.policy.tenants):
        return tenant
    return OTHER


def event_type_label(event_type: object) -> str:
    """An event type the schema defines, else ``other``."""
    return event_type if isinstance(event_type, str) and event_type in _EVENT_TYPES else OTHER


def notice_sent(count: int = 1) -> None:
    """Count notices sent to ``jit.notices`` (issue J): the worker counts each batch's
    once Kafka acknowledged them (streams.worker.observe.record_batch)."""
    NOTICES_SENT.inc(count)
