"""Turn core verdicts into contract decisions: content-derived ids, cause and policy pinned.

:func:`encode_decisions` writes a decision's wire bytes straight from its verdict (what the
stream and the replay publish); :func:`to_decisions` builds the :class:`Decision` models
of the same verdicts, for tools and tests. The two agree byte for byte
(tests/policy/test_decision_bytes.py).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import orjson

from policy.rules.base import Rule
from policy.verdicts import Verdict
from schemas._base import trusted_model
from schemas.decisions import (
    DECISION_SCHEMA,
    Cause,
    Decision,
    DecisionSubject,
    PolicyRef,
    RuleRef,
    StateChange,
    StateSummary,
)
from schemas.events import ClockTick, InputEvent, SubjectKind

__all__ = ["decision_id", "encode_decisions", "to_decisions"]

_DECISION_SET = frozenset(Decision.model_fields) - {"schema_"}
"""The fields to_decisions passes: all but the constant schema, as model_construct saw it."""
_STATE_SET = frozenset(StateChange.model_fields)
_RULE_SET = frozenset(RuleRef.model_fields)
_RULE_REFS: dict[str, RuleRef] = {}
"""One immutable RuleRef per rule id: a rule's wire form never changes (policy/rules/)."""


def _rule_ref(rule: Rule) -> RuleRef:
    ref = _RULE_REFS.get(rule.id)
    if ref is None or ref.description != rule.description:
        ref = trusted_model(RuleRef, {"id": rule.id, "description": rule.description},
                            set(_RULE_SET))
        _RULE_REFS[rule.id] = ref
    return ref


def decision_id(tenant: str, subject: DecisionSubject, verdict: Verdict,
                policy: PolicyRef) -> str:
    """Derive the id from the decision's contents, so it never stands for two.

    Hashed: the verdict's key (its cause's ``event_id`` and position, or for an expiry the
    thing that ran out), tenant, subject (id, kind, owner), action, ``at``, request id,
    targets, resources, ``expires_at``, rule (id and sentence), reason, policy (version and
    sha256), state before and after, and ``post_review``: everything a decision says but
    ``emitted_at``, the id itself and where its cause was read (Kafka coordinates, and for
    an expiry which event or tick noticed it). The same input, state and policy give the
    same id, so a redelivery re-decided from the same stored state (after a crash) and a
    replay repeat it; a decision that differs in anything gets another. Before issue H the
    id covered only the key, action, rule and targets, so an event id reused once it was
    forgotten gave an earlier id other contents.
    """
    return _decision_id(_about(tenant, subject.id, subject.kind, subject.owner, policy), verdict)


def _about(tenant: str, subject_id: str, kind: str, owner: str | None,
           policy: PolicyRef) -> hashlib._Hash:
    """The hash fed with what all of one event's decisions share, to be copied for each
    (a JSON array delimits itself, so the two arrays hashed one after the other are
    unambiguous)."""
    return hashlib.sha256(orjson.dumps((tenant, subject_id, kind, owner, policy.version,
                                        policy.sha256)))


def _decision_id(about: hashlib._Hash, verdict: Verdict) -> str:
    digest = about.copy()
    before, after = verdict.before, verdict.after
    # The summaries' fields one by one: orjson takes several times longer over dataclasses.
    digest.update(orjson.dumps((
        verdict.key, verdict.action, verdict.at, verdict.request_id, verdict.targets,
        verdict.resources, verdict.expires_at, verdict.rule.id, verdict.rule.description,
        verdict.reason, before.active_grants, before.active_resources, before.envs,
        after.active_grants, after.active_resources, after.envs, verdict.post_review,
    )))
    return "d-" + digest.hexdigest()[:32]


def to_decisions(
    verdicts: tuple[Verdict, ...],
    event: InputEvent | ClockTick,
    policy: PolicyRef,
    cause: Cause,
    emitted_at: datetime | None,
    subject: DecisionSubject | None = None,
) -> tuple[Decision, ...]:
    """Wrap verdicts for the decisions topic.

    ``emitted_at`` is the wall clock in the stream; ``None`` (a file replay) uses each
    verdict's own ``at`` so that replays are byte-identical. ``subject`` is who the
    verdicts are about as the state knows them (default: as the event names them).
    """
    if subject is None:
        subject = DecisionSubject(
            id=event.subject.id, kind=event.subject.kind, owner=event.subject.owner
        )
    # Built unvalidated: every field comes typed from the core, so validating it again
    # would only cost time (a third of a step); the golden replays pin the wire bytes.
    tenant = event.tenant
    about = _about(tenant, subject.id, subject.kind, subject.owner, policy)
    return tuple(
        trusted_model(Decision, {
            "schema_": DECISION_SCHEMA,
            "decision_id": _decision_id(about, verdict),
            "action": verdict.action,
            "at": verdict.at,
            "emitted_at": verdict.at if emitted_at is None else emitted_at,
            "tenant": tenant,
            "subject": subject,
            "request_id": verdict.request_id,
            "targets": verdict.targets,
            "resources": verdict.resources,
            "expires_at": verdict.expires_at,
            "rule": _rule_ref(verdict.rule),
            "reason": verdict.reason,
            "policy": policy,
            "state": trusted_model(StateChange, {"before": verdict.before, "after": verdict.after},
                              set(_STATE_SET)),
            "cause": cause,
            "post_review": verdict.post_review,
        }, set(_DECISION_SET))
        for verdict in verdicts
    )


_UTC_Z = orjson.OPT_UTC_Z
"""Times as pydantic writes a UTC ``UtcDatetime`` field: ``...Z``, microseconds when set."""
_FRAGMENTS: dict[tuple[object, ...], orjson.Fragment] = {}
"""Wire forms made once: of each rule, policy reference and pair of holdings summaries
(``state``); bounded, started again when full."""
_FRAGMENT_MEMORY = 4096


def _fragment(key: tuple[object, ...], value: object) -> orjson.Fragment:
    fragment = _FRAGMENTS.get(key)
    if fragment is None:
        if len(_FRAGMENTS) >= _FRAGMENT_MEMORY:
            _FRAGMENTS.clear()
        fragment = _FRAGMENTS[key] = orjson.Fragment(orjson.dumps(value))
    return fragment


def _state(before: StateSummary, after: StateSummary) -> orjson.Fragment:
    # Keyed by value: holdings summaries repeat, and orjson reads a slotted dataclass's
    # fields slower than it writes the few bytes they make.
    key = ("state", before.active_grants, before.active_resources, before.envs,
           after.active_grants, after.active_resources, after.envs)
    fragment = _FRAGMENTS.get(key)
    return fragment if fragment is not None else _fragment(key, {
        "before": {"active_grants": before.active_grants,
                   "active_resources": before.active_resources, "envs": before.envs},
        "after": {"active_grants": after.active_grants,
                  "active_resources": after.active_resources, "envs": after.envs}})


def encode_decisions(
    verdicts: tuple[Verdict, ...],
    tenant: str,
    subject: tuple[str, SubjectKind, str | None],
    policy: PolicyRef,
    cause: Cause,
    emitted_at: datetime | None,
) -> tuple[bytes, ...]:
    """The wire bytes of :func:`to_decisions`' decisions, without building the models:
    ``encode_decision(to_decisions(...)[i])`` exactly (field order, ``...Z`` times, escapes,
    compact separators), at about a third of the cost.

    ``subject`` is (id, kind, owner) as the state knows them. What every decision of one
    event shares (subject, cause) is encoded once, what recurs across events (rules, the
    policy, holdings) once in a while, and spliced in as fragments.
    """
    subject_id, kind, owner = subject
    about = _about(tenant, subject_id, kind, owner, policy)
    shared_subject = orjson.Fragment(orjson.dumps({"id": subject_id, "kind": kind,
                                                   "owner": owner}))
    version, sha256 = policy.version, policy.sha256
    shared_policy = _FRAGMENTS.get(("policy", version, sha256)) or _fragment(
        ("policy", version, sha256), {"version": version, "sha256": sha256})
    shared_cause = orjson.Fragment(orjson.dumps({
        "event_id": cause.event_id, "type": cause.type, "topic": cause.topic,
        "partition": cause.partition, "offset": cause.offset}))
    encoded = []
    for verdict in verdicts:
        rule = verdict.rule
        rule_key = ("rule", rule.id, rule.description)
        encoded.append(orjson.dumps({
            "schema": DECISION_SCHEMA,
            "decision_id": _decision_id(about, verdict),
            "action": verdict.action,
            "at": verdict.at,
            "emitted_at": verdict.at if emitted_at is None else emitted_at,
            "tenant": tenant,
            "subject": shared_subject,
            "request_id": verdict.request_id,
            "targets": verdict.targets,
            "resources": verdict.resources,
            "expires_at": verdict.expires_at,
            "rule": _FRAGMENTS.get(rule_key) or _fragment(
                rule_key, {"id": rule.id, "description": rule.description}),
            "reason": verdict.reason,
            "policy": shared_policy,
            "state": _state(verdict.before, verdict.after),
            "cause": shared_cause,
            "post_review": verdict.post_review,
        }, option=_UTC_Z))
    return tuple(encoded)
