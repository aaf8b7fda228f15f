"""The exposure report's figures (issue K): who held what, for how long, and how access
was decided, computed from decisions alone (pure: no Kafka, no clock, no files).

:class:`ExposureBuilder` takes decisions (and policy-load records) one at a time, in the
order they were published, so a large topic is read once without being held in memory;
:meth:`ExposureBuilder.finish` returns the :class:`Exposure` for a period. A decision says
what was granted and until when, but not what was asked: the requested lifetime, each
resource's environment and sensitivity are in the ``request.created`` events, which
:class:`RequestFacts` carries when the caller has them (``jitwatch report --events``).
Without them the requested lifetime is read from the verdict's reason when the grant was
clamped ("requested N s"), environments from the subject's state before and after, and
sensitivity is ``unknown``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from schemas.decisions import Decision
from schemas.events import RequestCreated
from schemas.policy_load import PolicyLoadRecord

__all__ = ["SENSITIVITY_ORDER", "Exposure", "ExposureBuilder", "GrantLife", "RequestFacts",
           "facts_of"]

SENSITIVITY_ORDER = ("low", "medium", "high", "critical")

_REQUESTED = re.compile(r"requested (\d+) s")
# Escalated requests end pending with one of these rules (CONTRACT: lifecycle, review).
_QUEUE_ENDS = {"review-approved": "approved", "review-denied": "denied",
               "pending-expired": "expired", "request-withdrawn": "withdrawn"}

Key = tuple[str, str, str]
"""(tenant, subject id, request id): request ids are the subject's own."""


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a ``request.created`` asked: lifetime (``None``: the policy's default),
    environments and highest sensitivity of its resources."""

    ttl_s: int | None
    envs: tuple[str, ...]
    sensitivity: str


def facts_of(event: RequestCreated) -> tuple[Key, RequestFacts]:
    """The key and facts of one ``request.created`` event."""
    envs = tuple(sorted({resource.env for resource in event.resources}))
    highest = max(SENSITIVITY_ORDER.index(resource.sensitivity) for resource in event.resources)
    return ((event.tenant, event.subject.id, event.request_id),
            RequestFacts(event.ttl_s, envs, SENSITIVITY_ORDER[highest]))


@dataclass(slots=True)
class GrantLife:
    """One grant from its approval to its end (``end`` ``None``: still live)."""

    tenant: str
    subject: str
    owner: str | None
    request_id: str
    resources: tuple[str, ...]
    start: datetime
    expires: datetime
    granted_ttl_s: float
    requested_ttl_s: float | None
    clamped: bool
    break_glass: bool
    envs: tuple[str, ...]
    sensitivity: str
    extensions: int = 0
    end: datetime | None = None
    ended_by: str | None = None
    """The rule of the revoke that ended it (``ttl-expired``, ``task-completed``,
    ``request-withdrawn``, a cap or exclusion rule) or of the lock that froze it
    (``session-without-grant``...)."""

    def held(self, since: datetime | None, until: datetime) -> float:
        """Hours held within [since, until]."""
        end = min(self.end or self.expires, until)
        start = self.start if since is None else max(self.start, since)
        return max((end - start).total_seconds(), 0.0) / 3600


@dataclass(slots=True)
class _Queued:
    at: datetime
    rule: str
    ended: datetime | None = None
    outcome: str = "open"


@dataclass(slots=True)
class Exposure:
    """Every figure of the report for one period (``since``..``until``), one tenant or all."""

    since: datetime | None
    until: datetime
    grants: list[GrantLife]
    decisions: int
    actions: Counter[str]
    rules: Counter[tuple[str, str]]
    request_actions: Counter[str]
    hours_by_subject: defaultdict[str, float]
    hours_by_owner: defaultdict[str, float]
    hours_by_env: defaultdict[str, float]
    hours_by_sensitivity: defaultdict[str, float]
    hours_by_day: defaultdict[str, float]
    ended_by: Counter[str]
    task_to_revoke_s: list[float]
    expiry_lateness_s: list[float]
    queue: list[tuple[str, float, str]]
    """(rule that escalated, age in seconds, how it ended or ``open``) per escalated request."""
    break_glass: Counter[str]
    locks: Counter[str]
    locked_subjects: Counter[str]
    unlocks: Counter[str]
    policies: list[tuple[str, str, datetime, datetime, int]]
    """(version, sha256, first and last decision under it, decisions) in order of first use."""
    policy_loads: list[PolicyLoadRecord]
    extensions: int
    clamps: int
    unreadable: int = 0


@dataclass(slots=True)
class ExposureBuilder:
    """Folds decisions into grant lives, queues, obligations and counts."""

    tenant: str | None = None
    facts: dict[Key, RequestFacts] = field(default_factory=dict)
    unreadable: int = 0
    _grants: dict[Key, GrantLife] = field(default_factory=dict)
    _ended: list[GrantLife] = field(default_factory=list)
    _queue: dict[Key, _Queued] = field(default_factory=dict)
    _glass: dict[Key, tuple[datetime, str]] = field(default_factory=dict)
    """Each break-glass grant's time and its post-review status."""
    _decisions: list[_Seen] = field(default_factory=list)
    _loads: list[PolicyLoadRecord] = field(default_factory=list)
    _last: datetime | None = None

    def add(self, record: Decision | PolicyLoadRecord) -> None:
        """Fold one record in (decisions of other tenants than :attr:`tenant` are skipped)."""
        if isinstance(record, PolicyLoadRecord):
            self._loads.append(record)
            return
        if self.tenant is not None and record.tenant != self.tenant:
            return
        self._last = record.at if self._last is None else max(self._last, record.at)
        self._decisions.append(_slim(record))
        key = (record.tenant, record.subject.id, record.request_id or "")
        if record.action == "approve":
            self._approve(record, key)
        elif record.action in ("revoke", "lock"):  # a lock on a live grant's request ends it
            for target in record.targets:
                self._end(record, (record.tenant, record.subject.id, target))
        elif record.action == "escalate":
            if record.rule.id == "post-review-overdue":
                self._review(key, "overdue")
            elif key not in self._queue or self._queue[key].ended is not None:
                self._queue[key] = _Queued(record.at, record.rule.id)
        if record.action == "deny" and record.rule.id == "post-review-done":
            self._review(key, "rejected")
        if record.rule.id in _QUEUE_ENDS and key in self._queue:
            queued = self._queue[key]
            if queued.ended is None:
                queued.ended, queued.outcome = record.at, _QUEUE_ENDS[record.rule.id]

    def _approve(self, decision: Decision, key: Key) -> None:
        if decision.rule.id == "post-review-done":
            self._review(key, "approved")
            return
        if decision.expires_at is None:
            return
        live = self._grants.get(key)
        if live is not None:  # an extension moves the live grant's expiry
            live.expires, live.extensions = decision.expires_at, live.extensions + 1
            return
        granted = (decision.expires_at - decision.at).total_seconds()
        facts = self.facts.get(key)
        asked = _REQUESTED.search(decision.reason)
        requested: float | None = float(asked.group(1)) if asked else None
        if facts is not None and facts.ttl_s is not None:
            requested = float(facts.ttl_s)
        glass = decision.rule.id == "break-glass"
        if glass:
            self._glass[key] = (decision.at, "open")
        self._grants[key] = GrantLife(
            tenant=decision.tenant, subject=decision.subject.id,
            owner=decision.subject.owner, request_id=key[2], resources=decision.resources,
            start=decision.at, expires=decision.expires_at, granted_ttl_s=granted,
            requested_ttl_s=requested,
            clamped="clamped" in decision.reason or (requested or 0) > granted + 0.5,
            break_glass=glass,
            envs=facts.envs if facts else _new_envs(decision),
            sensitivity=facts.sensitivity if facts else "unknown")

    def _review(self, key: Key, status: str) -> None:
        if key in self._glass:  # else its grant came before what was read
            at, before = self._glass[key]
            late = before == "overdue" and status != "overdue"
            self._glass[key] = (at, f"{status} late" if late else status)

    def _end(self, decision: Decision, key: Key) -> None:
        grant = self._grants.pop(key, None)
        if grant is not None:
            grant.end, grant.ended_by = decision.at, decision.rule.id
            self._ended.append(grant)

    def finish(self, since: datetime | None = None,
               until: datetime | None = None) -> Exposure:
        """The figures for [since, until) (``until`` default: the last decision's time)."""
        as_of = until or self._last or since or datetime(1970, 1, 1, tzinfo=UTC)
        in_period = [d for d in self._decisions if _within(d.at, since, until)]
        grants = [g for g in (*self._ended, *self._grants.values())
                  if g.start < as_of and (since is None or (g.end or g.expires) > since)]
        exposure = _empty(since, as_of, grants, self._loads, self.unreadable)
        _count_decisions(exposure, in_period)
        for grant in grants:
            _count_grant(exposure, grant, since, as_of)
        for queued in self._queue.values():
            if queued.at < as_of and (since is None or (queued.ended or as_of) > since):
                age = ((queued.ended or as_of) - queued.at).total_seconds()
                exposure.queue.append((queued.rule, age, queued.outcome))
        exposure.break_glass.update(status for at, status in self._glass.values()
                                    if _within(at, since, until))
        return exposure


def _within(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    """Whether ``at`` is in [since, until); without ``until``, the last decision is in."""
    return (since is None or at >= since) and (until is None or at < until)


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the period's counts need of one decision (a whole one is ~20 times larger: a
    topic of millions is counted in a few hundred bytes each)."""

    at: datetime
    emitted_at: datetime
    action: str
    rule: str
    tenant: str
    subject: str
    cause: str
    policy: tuple[str, str]


def _slim(decision: Decision) -> _Seen:
    return _Seen(decision.at, decision.emitted_at, decision.action, decision.rule.id,
                 decision.tenant, decision.subject.id, decision.cause.type,
                 (decision.policy.version, decision.policy.sha256))


def _new_envs(decision: Decision) -> tuple[str, ...]:
    after, before = decision.state.after.envs, decision.state.before.envs
    new = tuple(sorted(set(after) - set(before)))
    if new:
        return new
    return tuple(after) if decision.state.before.active_grants == 0 else ("unknown",)


def _empty(since: datetime | None, until: datetime, grants: list[GrantLife],
           loads: list[PolicyLoadRecord], unreadable: int) -> Exposure:
    return Exposure(
        since=since, until=until, grants=grants, decisions=0, actions=Counter(),
        rules=Counter(), request_actions=Counter(), hours_by_subject=defaultdict(float),
        hours_by_owner=defaultdict(float), hours_by_env=defaultdict(float),
        hours_by_sensitivity=defaultdict(float),
        hours_by_day=defaultdict(float), ended_by=Counter(), task_to_revoke_s=[],
        expiry_lateness_s=[], queue=[], break_glass=Counter(), locks=Counter(),
        locked_subjects=Counter(), unlocks=Counter(), policies=[],
        policy_loads=[load for load in loads
                      if (since is None or load.at >= since) and load.at <= until],
        extensions=sum(g.extensions for g in grants),
        clamps=sum(g.clamped for g in grants), unreadable=unreadable)


def _count_decisions(exposure: Exposure, decisions: Iterable[_Seen]) -> None:
    first: dict[tuple[str, str], datetime] = {}
    last: dict[tuple[str, str], datetime] = {}
    used: Counter[tuple[str, str]] = Counter()
    for decision in decisions:
        exposure.decisions += 1
        exposure.actions[decision.action] += 1
        exposure.rules[(decision.action, decision.rule)] += 1
        if decision.cause in ("request.created", "request.extension_requested"):
            exposure.request_actions[decision.action] += 1
        late = (decision.emitted_at - decision.at).total_seconds()
        if decision.action == "revoke" and decision.rule == "task-completed":
            exposure.task_to_revoke_s.append(late)
        if decision.action == "revoke" and decision.rule == "ttl-expired":
            exposure.expiry_lateness_s.append(late)
        if decision.action == "lock":
            exposure.locks[decision.rule] += 1
            exposure.locked_subjects[f"{decision.tenant}/{decision.subject}"] += 1
        if decision.action == "unlock":
            exposure.unlocks[decision.rule] += 1
        first.setdefault(decision.policy, decision.at)
        last[decision.policy], used[decision.policy] = decision.at, used[decision.policy] + 1
    exposure.policies = [(version, sha, first[(version, sha)], last[(version, sha)],
                          used[(version, sha)]) for version, sha in first]


def _count_grant(exposure: Exposure, grant: GrantLife, since: datetime | None,
                 until: datetime) -> None:
    hours = grant.held(since, until)
    exposure.hours_by_subject[f"{grant.tenant}/{grant.subject}"] += hours
    exposure.hours_by_owner[grant.owner or "(no owner)"] += hours
    for env in grant.envs or ("unknown",):
        exposure.hours_by_env[env] += hours
    exposure.hours_by_sensitivity[grant.sensitivity] += hours
    exposure.ended_by[grant.ended_by or "live"] += 1
    _by_day(exposure.hours_by_day, grant, since, until)


def _by_day(days: defaultdict[str, float], grant: GrantLife, since: datetime | None,
            until: datetime) -> None:
    """Add the grant's hours to each UTC day they fall in."""
    start = grant.start if since is None else max(grant.start, since)
    end = min(grant.end or grant.expires, until)
    while start < end:
        midnight = (start + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                       microsecond=0)
        stop = min(midnight, end)
        days[start.date().isoformat()] += (stop - start).total_seconds() / 3600
        start = stop


