"""The pure decision function: ``decide(state, event, now, policy) -> (new_state, verdicts)``.

No clock, no I/O, no environment: the same inputs always give the same outputs, which is
what lets a file replay (``simulate``) stand as the oracle for the stream. Errors inside
evaluation come back as a ``deny`` verdict, never as an exception and never as an approve.

For a new request every rule is asked; the one place that combines them is
:func:`_on_request_created`: any deny wins, then any escalation, and only then approve.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache, partial
from zoneinfo import ZoneInfo

from policy import rules
from policy.reviews import review_signature_problem
from policy.rules import Rule
from schemas._base import format_time
from schemas.decisions import Action, StateSummary
from schemas.events import (
    ClockTick,
    InputEvent,
    LockReleased,
    RequestCreated,
    RequestReviewed,
    RequestWithdrawn,
    Resource,
    SessionActivity,
    SessionEnded,
    SessionStarted,
    TaskCompleted,
)
from schemas.policy import SENSITIVITY_RANK, WEEKDAYS, Policy, TenantPolicy
from schemas.state import Grant, Pending, RequestLock, Session, SubjectState

__all__ = ["APPLIED_EVENT_MEMORY", "Verdict", "decide", "next_deadline", "summarize"]

APPLIED_EVENT_MEMORY = 64
"""How many recent event ids a subject remembers to drop redeliveries.

At-least-once delivery redelivers only events after the last committed offset (seconds of
traffic), so one subject seeing more than this many events in that window is not expected.
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One outcome of the core, before the shell adds ids, cause and policy reference.

    ``key`` is unique per (tenant, subject) and stable across replays: it is what the
    deterministic ``decision_id`` is derived from.
    """

    action: Action
    rule: Rule
    reason: str
    at: datetime
    request_id: str | None
    targets: tuple[str, ...]
    resources: tuple[str, ...]
    expires_at: datetime | None
    before: StateSummary
    after: StateSummary
    key: str
    post_review: bool = False


_NOTHING_HELD = StateSummary(active_grants=0, active_resources=0, envs=())


def summarize(grants: Iterable[Grant]) -> StateSummary:
    """Count live grants, distinct resource ids and environments held."""
    # One pass, no comprehensions: every verdict needs a summary, most need two.
    count = 0
    resources: set[str] = set()
    envs: set[str] = set()
    for grant in grants:
        count += 1
        for resource in grant.resources:
            resources.add(resource.id)
            envs.add(resource.env)
    if not count:
        return _NOTHING_HELD  # immutable, so one instance serves every empty holding
    return StateSummary(count, len(resources), tuple(sorted(envs)))


def _rank(resources: Iterable[Resource]) -> int:
    """The highest sensitivity rank among ``resources``."""
    return max([SENSITIVITY_RANK[resource.sensitivity] for resource in resources])


def _reaches(rank: int, threshold: str) -> bool:
    """Whether resources of highest rank ``rank`` reach ``threshold`` (``never`` is never
    reached). Callers rank a request's resources once for every threshold they ask."""
    return threshold != "never" and rank >= SENSITIVITY_RANK[threshold]


def _ids(resources: Iterable[Resource]) -> tuple[str, ...]:
    return tuple([resource.id for resource in resources])


class _Ledger:
    """The subject's state being changed by one event, and the verdicts that record it."""

    def __init__(self, state: SubjectState, event: InputEvent | ClockTick) -> None:
        self.grants = list(state.grants)
        self.pending = list(state.pending)
        self.request_locks = list(state.request_locks)
        self.sessions = list(state.sessions)
        self.locked_until = state.locked_until
        self.state = state
        # A request states who asks; other events (reviews, sessions) may name the subject
        # by id only, so they do not overwrite what the request said.
        self.lock_s = 3600  # set from the tenant's policy before any rule runs
        claims = isinstance(event, RequestCreated)
        self.kind = event.subject.kind if claims else state.kind
        self.owner = event.subject.owner if claims else state.owner
        self.verdicts: list[Verdict] = []
        self._event = event
        self._count = 0
        # Grants change only through grant(), revoke() and lock_subject(), which drop it.
        self._summary: StateSummary | None = None

    def summary(self) -> StateSummary:
        """What the subject holds now (computed once per change of its grants)."""
        if self._summary is None:
            self._summary = summarize(self.grants)
        return self._summary

    def emit(
        self,
        action: Action,
        rule: Rule,
        reason: str,
        before: StateSummary | None = None,
        *,
        at: datetime | None = None,
        request_id: str | None = None,
        targets: tuple[str, ...] = (),
        resources: tuple[str, ...] = (),
        expires_at: datetime | None = None,
        key: str | None = None,
        post_review: bool = False,
    ) -> None:
        after = self.summary()
        if key is None:
            key = f"{self._event.event_id}#{self._count}"
            self._count += 1
        self.verdicts.append(Verdict(
            action=action, rule=rule, reason=reason,
            at=self._event.at if at is None else at,
            request_id=request_id, targets=targets, resources=resources,
            expires_at=expires_at, before=after if before is None else before,
            after=after, key=key, post_review=post_review,
        ))

    def live(self, request_id: str) -> Grant | None:
        for grant in self.grants:
            if grant.request_id == request_id:
                return grant
        return None

    def waiting(self, request_id: str) -> Pending | None:
        for item in self.pending:
            if item.request_id == request_id:
                return item
        return None

    def grant(self, grant: Grant, rule: Rule, reason: str) -> None:
        before = self.summary()
        self.grants.append(grant)
        self._summary = None
        self.emit("approve", rule, reason, before, request_id=grant.request_id,
                  resources=_ids(grant.resources), expires_at=grant.expires_at,
                  post_review=grant.post_review)

    def revoke(self, grant: Grant, rule: Rule, reason: str, *, at: datetime | None = None,
               key: str | None = None) -> None:
        before = self.summary()
        self.grants.remove(grant)
        self._summary = None
        self.emit("revoke", rule, reason, before, at=at, request_id=grant.request_id,
                  targets=(grant.request_id,), resources=_ids(grant.resources), key=key)

    def deny(self, request_id: str | None, resources: tuple[str, ...], rule: Rule,
             reason: str, *, at: datetime | None = None, key: str | None = None) -> None:
        self.emit("deny", rule, reason, at=at, request_id=request_id, resources=resources,
                  key=key)

    def request_lock(self, request_id: str | None) -> RequestLock | None:
        """The lock on ``request_id``, if it is locked."""
        for lock in self.request_locks:
            if lock.request_id == request_id:
                return lock
        return None

    def lock_request(self, request_id: str, resources: tuple[str, ...], until: datetime,
                     rule: Rule, reason: str) -> None:
        """Freeze one request: no review decides it and its id is refused until ``until``."""
        self.request_locks.append(RequestLock(request_id, until))
        self.emit("lock", rule, reason, request_id=request_id, targets=(request_id,),
                  resources=resources, expires_at=until)

    def lock_subject(self, until: datetime, rule: Rule, reason: str,
                     request_id: str | None, *, at: datetime | None = None,
                     key: str | None = None) -> None:
        """Freeze the subject: its live grants end with the lock (listed as targets)."""
        before = self.summary()
        ended = tuple(grant.request_id for grant in self.grants)
        self.grants.clear()
        self._summary = None
        if self.locked_until is None or self.locked_until < until:
            self.locked_until = until
        self.emit("lock", rule, reason, before, at=at, request_id=request_id, targets=ended,
                  expires_at=self.locked_until, key=key)


def next_deadline(state: SubjectState) -> datetime | None:
    """When something of this subject next runs out (grant, pending review, lock)."""
    moments = [grant.expires_at for grant in state.grants]
    moments += [item.pending_until for item in state.pending]
    moments += [lock.until for lock in state.request_locks]
    moments += [session.held_until for session in state.sessions
                if session.held_until is not None]
    if state.locked_until is not None:
        moments.append(state.locked_until)
    return min(moments, default=None)


def _expire(ledger: _Ledger, now: datetime) -> None:
    """Everything whose time ran out by ``now`` ends first, oldest first across kinds.

    Keys name the thing that ended, not the event that noticed: the stream's timer and a
    file replay notice an expiry through different events but must agree on its id.
    """
    due: list[tuple[datetime, int, int, Callable[[], None]]] = []
    for number, grant in enumerate(ledger.grants):
        if grant.expires_at <= now:
            due.append((grant.expires_at, 0, number, partial(_grant_ran_out, ledger, grant)))
    for number, item in enumerate(ledger.pending):
        if item.pending_until <= now:
            due.append((item.pending_until, 1, number, partial(_review_ran_out, ledger, item)))
    if ledger.locked_until is not None and ledger.locked_until <= now:
        due.append((ledger.locked_until, 2, 0, partial(_subject_lock_ran_out, ledger)))
    for number, lock in enumerate(ledger.request_locks):
        if lock.until <= now:
            due.append((lock.until, 3, number, partial(_request_lock_ran_out, ledger, lock)))
    for number, session in enumerate(ledger.sessions):
        if session.held_until is not None and session.held_until <= now:
            due.append((session.held_until, 4, number,
                        partial(_session_hold_ran_out, ledger, session)))
    if not due:
        return  # the usual case: nothing ran out
    for *_, end in sorted(due, key=lambda item: item[:3]):
        end()


def _grant_ran_out(ledger: _Ledger, grant: Grant) -> None:
    ledger.revoke(grant, rules.TTL_EXPIRED,
                  f"grant {grant.request_id} reached its expiry at "
                  f"{format_time(grant.expires_at)}",
                  at=grant.expires_at,
                  key=f"expire:{grant.request_id}:{format_time(grant.expires_at)}")


def _review_ran_out(ledger: _Ledger, item: Pending) -> None:
    ledger.pending.remove(item)
    ledger.deny(item.request_id, _ids(item.resources), rules.PENDING_EXPIRED,
                f"request {item.request_id} was not reviewed by "
                f"{format_time(item.pending_until)}",
                at=item.pending_until,
                key=f"pending:{item.request_id}:{format_time(item.pending_until)}")


def _subject_lock_ran_out(ledger: _Ledger) -> None:
    until = ledger.locked_until
    if until is None:  # only scheduled for a set lock
        return
    ledger.locked_until = None
    ledger.emit("unlock", rules.LOCK_EXPIRED, f"subject lock ended at {format_time(until)}",
                at=until, key=f"unlock:subject:{format_time(until)}")


def _request_lock_ran_out(ledger: _Ledger, lock: RequestLock) -> None:
    ledger.request_locks.remove(lock)
    ledger.emit("unlock", rules.LOCK_EXPIRED,
                f"lock on request {lock.request_id} ended at {format_time(lock.until)}",
                at=lock.until, request_id=lock.request_id, targets=(lock.request_id,),
                key=f"unlock:{lock.request_id}:{format_time(lock.until)}")


def _session_hold_ran_out(ledger: _Ledger, session: Session) -> None:
    """A session waited for its grant; the grant is live now, or the subject is locked."""
    index = ledger.sessions.index(session)
    at = session.held_until
    if at is None:
        return
    if _covering(ledger, session.request_id, session.resource) is not None:
        ledger.sessions[index] = replace(session, held_until=None)
        return
    del ledger.sessions[index]
    ledger.lock_subject(at + timedelta(seconds=ledger.lock_s), rules.SESSION_WITHOUT_GRANT,
                        f"session {session.session_id} used request {session.request_id}, "
                        f"which had no live grant of this subject for {session.resource} "
                        f"by {format_time(at)}", session.request_id, at=at,
                        key=f"session:{session.session_id}:{format_time(at)}")


def _covering(ledger: _Ledger, request_id: str | None, resource: str) -> Grant | None:
    """A live grant covering ``resource`` (of ``request_id`` when given)."""
    for grant in ledger.grants:
        if (request_id is None or grant.request_id == request_id) and any(
                r.id == resource for r in grant.resources):
            return grant
    return None


# ---------------------------------------------------------------- rules asked per request


def _sides(resources: Iterable[Resource], envs: tuple[str, ...],
           roles: tuple[str, ...]) -> set[str]:
    """Which sides of an exclusive group these resources stand on."""
    found = set()
    for resource in resources:
        if resource.env in envs:
            found.add(resource.env)
        if resource.roles:  # most resources name none: skip building a generator
            found.update(f"role {role}" for role in resource.roles if role in roles)
    return found


def _ttl(event: RequestCreated, tenant: TenantPolicy) -> tuple[int, int]:
    """(requested or default lifetime, maximum): the strictest limit matching any resource."""
    default_s, max_s = tenant.ttl.default_s, tenant.ttl.max_s
    for limit in tenant.ttl.limits:
        for resource in event.resources:
            if (limit.env is None or limit.env == resource.env) and (
                limit.sensitivity_from is None
                or SENSITIVITY_RANK[resource.sensitivity]
                >= SENSITIVITY_RANK[limit.sensitivity_from]
            ):
                default_s, max_s = min(default_s, limit.default_s), min(max_s, limit.max_s)
    return (event.ttl_s if event.ttl_s is not None else default_s), max_s


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _outside_window(event: RequestCreated, tenant: TenantPolicy) -> list[tuple[str, str]]:
    """(outcome, reason) for each time window the request falls outside of."""
    found: list[tuple[str, str]] = []
    for window in tenant.windows:
        covered = [r for r in event.resources
                   if (not window.envs or r.env in window.envs)
                   and SENSITIVITY_RANK[r.sensitivity] >= SENSITIVITY_RANK[window.sensitivity_from]]
        if not covered:
            continue
        local = event.at.astimezone(_zone(window.timezone))
        if WEEKDAYS[local.weekday()] in window.days and window.start <= local.time() < window.end:
            continue
        found.append((window.outside,
                      f"{', '.join(_ids(covered))} outside {'/'.join(window.days)} "
                      f"{window.start:%H:%M}-{window.end:%H:%M} {window.timezone} "
                      f"(request at {local:%a %H:%M})"))
    return found


def _displacements(ledger: _Ledger, resources: tuple[Resource, ...],
                   tenant: TenantPolicy) -> list[tuple[Rule, str]]:
    """Objections of ``deny_new`` strategies: granting these resources would displace live
    grants. Asked for a new request and again when a review approves a pending one."""
    found: list[tuple[Rule, str]] = []
    caps = tenant.caps
    if caps.strategy == "deny_new":
        held = {r.id for grant in ledger.grants for r in grant.resources}
        held |= {resource.id for resource in resources}
        if len(held) > caps.max_active_resources:
            found.append((rules.MAX_ACTIVE_RESOURCES, f"subject would hold {len(held)} "
                          f"resources, limit is {caps.max_active_resources} (deny_new)"))
    for group in tenant.exclusive:
        if group.strategy != "deny_new":
            continue
        sides = _sides(resources, group.envs, group.roles)
        if len(sides) != 1:
            continue
        clash = [grant.request_id for grant in ledger.grants
                 if _sides(grant.resources, group.envs, group.roles) - sides]
        if clash:
            found.append((rules.EXCLUSIVE_ENVIRONMENTS, f"{''.join(sides)} excluded by live "
                          f"grant(s) {', '.join(clash)} ({group.name}, deny_new)"))
    return found


def _objections(ledger: _Ledger, event: RequestCreated, tenant: TenantPolicy,
                lifetime: tuple[int, int], outside: list[tuple[str, str]],
                rank: int) -> list[tuple[Rule, str]]:
    """Every rule that forbids this request outright, in rule order (deny wins)."""
    found: list[tuple[Rule, str]] = []
    subject = event.subject
    issuers = tenant.identity.allowed_issuers.get(subject.kind)
    if issuers is not None and subject.issuer not in issuers:
        found.append((rules.IDENTITY_ISSUER, f"{subject.kind} issuer {subject.issuer!r} is not "
                      f"allowed (allowed: {', '.join(issuers) or 'none'})"))
    if subject.kind in tenant.identity.require_attestation and not subject.attested:
        found.append((rules.IDENTITY_ATTESTATION,
                      f"{subject.kind} identity is not attested"))
    if ledger.live(event.request_id) or ledger.waiting(event.request_id):
        found.append((rules.REQUEST_ID_REUSED,
                      f"request {event.request_id} is already live or pending"))
    asked = {resource.id for resource in event.resources}
    caps = tenant.caps
    # The stricter cap names the denial; equal limits would say the same thing twice.
    if len(asked) > caps.max_resources_per_request < caps.max_active_resources:
        found.append((rules.CAPS_PER_REQUEST, f"request asks for {len(asked)} resources, limit "
                      f"is {caps.max_resources_per_request} per request"))
    if len(asked) > caps.max_active_resources:
        found.append((rules.MAX_ACTIVE_RESOURCES, f"request asks for {len(asked)} resources, "
                      f"limit is {caps.max_active_resources}"))
    for group in tenant.exclusive:
        sides = _sides(event.resources, group.envs, group.roles)
        if len(sides) > 1:
            found.append((rules.EXCLUSIVE_ENVIRONMENTS, f"request spans mutually exclusive "
                          f"{' and '.join(sorted(sides))} ({group.name})"))
    if len(asked) <= caps.max_active_resources:
        found += _displacements(ledger, event.resources, tenant)
    justify = tenant.justification
    if _reaches(rank, justify.reason_from) and not (event.reason or "").strip():
        found.append((rules.JUSTIFICATION_REASON,
                      f"a reason is required from sensitivity {justify.reason_from}"))
    if _reaches(rank, justify.ticket_from) and not _pattern(
            justify.ticket_pattern).fullmatch(event.ticket or ""):
        found.append((rules.JUSTIFICATION_TICKET, f"a ticket matching {justify.ticket_pattern} is "
                      f"required from sensitivity {justify.ticket_from} "
                      f"(got {event.ticket!r})"))
    requested, max_s = lifetime
    if requested > max_s and tenant.ttl.over_max == "deny":
        found.append((rules.TTL_MAX, f"ttl_s {requested} exceeds the maximum {max_s}"))
    if not event.break_glass:
        found.extend((rules.TIME_WINDOW, reason)
                     for outcome, reason in outside if outcome == "deny")
    return found


def _escalations(ledger: _Ledger, event: RequestCreated, tenant: TenantPolicy,
                 outside: list[tuple[str, str]], rank: int) -> list[tuple[Rule, str]]:
    """Every rule that wants a human to look first, in rule order."""
    found = [(rules.TIME_WINDOW, reason)
             for outcome, reason in outside if outcome == "escalate"]
    if _reaches(rank, tenant.step_up.from_sensitivity):
        found.append((rules.STEP_UP, f"sensitivity reaches {tenant.step_up.from_sensitivity}"))
    if event.subject.kind == "workload" and tenant.baseline.novel_workload == "escalate":
        novel = sorted({f"{r.env}/{r.sensitivity}" for r in event.resources}
                       - set(ledger.state.seen))
        if novel:
            found.append((rules.BASELINE_NOVEL, f"first request for {', '.join(novel)}"))
    return found


def _window(times: Iterable[datetime], now: datetime, seconds: int) -> tuple[datetime, ...]:
    start = now - timedelta(seconds=seconds)
    return tuple([moment for moment in times if moment > start])


def _combined(found: list[tuple[Rule, str]]) -> tuple[Rule, str]:
    rule, reason = found[0]
    if len(found) > 1:
        reason += "; also: " + "; ".join(other for _, other in found[1:])
    return rule, reason


# ---------------------------------------------------------------- event handlers


def _on_request_created(ledger: _Ledger, event: RequestCreated,
                        tenant: TenantPolicy) -> dict[str, object]:
    """Decide a new request; returns the state fields it changed beyond the ledger's."""
    now, request_id, resource_ids = event.at, event.request_id, _ids(event.resources)
    state = ledger.state
    recent = (*_window(state.recent_requests, now, tenant.baseline.window_s), now)
    extra: dict[str, object] = {"recent_requests": recent[-(tenant.baseline.max_requests + 1):]}
    # Returning `extra` early below still records this request for the rate baseline.

    if ledger.locked_until is not None:
        ledger.deny(request_id, resource_ids, rules.SUBJECT_LOCKED,
                    f"subject is locked until {format_time(ledger.locked_until)}")
        return extra
    lock = ledger.request_lock(request_id) if ledger.request_locks else None
    if lock is not None:
        ledger.deny(request_id, resource_ids, rules.REQUEST_LOCKED,
                    f"request {request_id} is locked until {format_time(lock.until)}")
        return extra
    if len(recent) > tenant.baseline.max_requests:
        until = now + timedelta(seconds=tenant.baseline.lock_s)
        ledger.deny(request_id, resource_ids, rules.BASELINE_RATE,
                    f"{len(recent)} requests within {tenant.baseline.window_s} s, baseline "
                    f"allows {tenant.baseline.max_requests}")
        ledger.lock_subject(until, rules.BASELINE_RATE,
                            f"request rate above baseline: locked for "
                            f"{tenant.baseline.lock_s} s", request_id)
        return extra

    # Worked out once per request: both the deny and the escalate rules read them.
    lifetime = _ttl(event, tenant)
    outside = _outside_window(event, tenant)
    rank = _rank(event.resources)
    objections = _objections(ledger, event, tenant, lifetime, outside, rank)
    glass = tenant.break_glass
    # Only break-glass requests read the ration: the rest skip filtering its window.
    uses = _window(state.break_glass_uses, now, glass.window_s) if event.break_glass else ()
    if event.break_glass and not objections:
        if not glass.enabled:
            objections.append((rules.BREAK_GLASS, "break-glass is disabled for this tenant"))
        elif len(uses) >= glass.max_per_window:
            ledger.deny(request_id, resource_ids, rules.BREAK_GLASS_LIMIT,
                        f"{len(uses)} break-glass grant(s) within {glass.window_s} s, "
                        f"allowed {glass.max_per_window}")
            ledger.lock_subject(now + timedelta(seconds=glass.lock_s), rules.BREAK_GLASS_LIMIT,
                                f"break-glass used beyond its ration: locked for "
                                f"{glass.lock_s} s", request_id)
            return extra
    if objections:
        ledger.deny(request_id, resource_ids, *_combined(objections))
        return extra

    requested, max_s = lifetime
    if event.break_glass:
        ttl = min(requested, max_s, glass.ttl_s)
        extra["break_glass_uses"] = (*uses, now)
        _approve(ledger, request_id, event.resources, now, ttl, tenant, rules.BREAK_GLASS,
                 f"break-glass: granted for {ttl} s, marked for post-review",
                 post_review=True)
        return extra

    escalations = _escalations(ledger, event, tenant, outside, rank)
    ttl = min(requested, max_s)
    if escalations:
        pending_until = now + timedelta(seconds=tenant.step_up.pending_ttl_s)
        ledger.pending.append(Pending(request_id, event.resources, now, pending_until, ttl,
                                      requested))
        rule, reason = _combined(escalations)
        ledger.emit("escalate", rule, f"{reason}; waiting for review until "
                    f"{format_time(pending_until)}", request_id=request_id,
                    resources=resource_ids, expires_at=pending_until)
        return extra

    _approve(ledger, request_id, event.resources, now, ttl, tenant, rules.AUTO_APPROVE,
             f"no rule objects; granted for {ttl} s{_clamped(ttl, requested)}")
    extra.update(_now_seen(ledger, event.resources))
    return extra


def _now_seen(ledger: _Ledger, resources: tuple[Resource, ...]) -> dict[str, object]:
    """A workload's approved env/sensitivity pairs, so they no longer count as novel."""
    if ledger.kind != "workload":
        return {}
    pairs = set(ledger.state.seen) | {f"{r.env}/{r.sensitivity}" for r in resources}
    return {"seen": tuple(sorted(pairs))}


def _clamped(ttl: int, requested: int | None) -> str:
    if requested is None or ttl >= requested:
        return ""
    return f" (requested {requested} s, clamped to the maximum)"


def _approve(ledger: _Ledger, request_id: str, resources: tuple[Resource, ...],
             now: datetime, ttl: int, tenant: TenantPolicy, rule: Rule, reason: str,
             *, post_review: bool = False) -> None:
    """Grant, then end what the new grant displaces: conflicting and oldest grants."""
    new = Grant(request_id, resources, now, now + timedelta(seconds=ttl), post_review)
    ledger.grant(new, rule, reason)
    for group in tenant.exclusive:
        sides = _sides(new.resources, group.envs, group.roles)
        if not sides:
            continue
        for older in [grant for grant in ledger.grants if grant is not new]:
            excluded = _sides(older.resources, group.envs, group.roles) - sides
            if excluded:
                ledger.revoke(older, rules.EXCLUSIVE_ENVIRONMENTS,
                              f"new grant {request_id} in {', '.join(sorted(sides))} "
                              f"excludes {', '.join(sorted(excluded))}: older grant "
                              f"{older.request_id} revoked")
    limit = tenant.caps.max_active_resources
    # The distinct resources held are the ledger's summary, already worked out for the
    # verdict just emitted.
    while (held := ledger.summary().active_resources) > limit:
        # The oldest grant ends first (ties in time keep arrival order), even one whose
        # resources are also held through a newer grant: oldest-first stays predictable.
        oldest = min((g for g in ledger.grants if g is not new), key=lambda g: g.granted_at)
        ledger.revoke(oldest, rules.MAX_ACTIVE_RESOURCES,
                      f"subject holds {held} resources, limit is {limit}: oldest grant "
                      f"{oldest.request_id} revoked")


def _on_review(ledger: _Ledger, event: RequestReviewed,
              tenant: TenantPolicy) -> dict[str, object]:
    """Decide a review; returns the state fields it changed beyond the ledger's."""
    waiting = ledger.waiting(event.request_id)
    if waiting is None:
        ledger.deny(event.request_id, (), rules.REVIEW_NOT_PENDING,
                    f"request {event.request_id} is not waiting for review; the "
                    f"{event.outcome} review by {event.reviewer.id} changes nothing")
        return {}
    resource_ids = _ids(waiting.resources)
    lock = ledger.request_lock(event.request_id)
    if lock is not None:
        ledger.deny(event.request_id, resource_ids, rules.REQUEST_LOCKED,
                    f"request {event.request_id} is locked until {format_time(lock.until)}; "
                    f"the {event.outcome} review by {event.reviewer.id} changes nothing and it "
                    "stays pending")
        return {}
    if event.reviewer.id == event.subject.id:
        ledger.deny(event.request_id, resource_ids, rules.REVIEW_SELF_APPROVAL,
                    f"{event.reviewer.id} cannot review their own request; it stays pending")
        if event.outcome == "approved":
            _lock_reviewed(ledger, event, resource_ids, tenant, rules.REVIEW_SELF_APPROVAL,
                           "self-approval attempt")
        return {}
    envs = {resource.env for resource in waiting.resources}
    allowed = all(any(event.reviewer.id in group.ids and (not group.envs or env in group.envs)
                      for group in tenant.step_up.reviewers) for env in envs)
    if not allowed:
        ledger.deny(event.request_id, resource_ids, rules.REVIEWER_NOT_ALLOWED,
                    f"{event.reviewer.id} may not review requests for "
                    f"{', '.join(sorted(envs))}; it stays pending")
        return {}
    # Issue F: a review counts only with a valid signature (policy/reviews.py).
    problem = review_signature_problem(event, tenant)
    if problem is not None:
        ledger.deny(event.request_id, resource_ids, rules.REVIEW_SIGNATURE, problem.reason)
        # A missing signature is a misconfigured tool; a present but invalid one on an
        # approval is an attempt to grant access nobody approved.
        if problem.forged and event.outcome == "approved":
            _lock_reviewed(ledger, event, resource_ids, tenant, rules.REVIEW_SIGNATURE,
                           "approval with an invalid signature")
        return {}
    ledger.pending.remove(waiting)
    if event.outcome == "denied":
        ledger.deny(event.request_id, resource_ids, rules.REVIEW_DENIED,
                    f"denied by {event.reviewer.id}")
        return {}
    if ledger.locked_until is not None:
        ledger.deny(event.request_id, resource_ids, rules.SUBJECT_LOCKED,
                    f"subject is locked until {format_time(ledger.locked_until)}")
        return {}
    displaced = _displacements(ledger, waiting.resources, tenant)
    if displaced:
        ledger.deny(event.request_id, resource_ids, *_combined(displaced))
        return {}
    _approve(ledger, event.request_id, waiting.resources, event.at, waiting.ttl_s, tenant,
             rules.REVIEW_APPROVED, f"approved by {event.reviewer.id}; granted for "
             f"{waiting.ttl_s} s{_clamped(waiting.ttl_s, waiting.requested_ttl_s)}")
    return _now_seen(ledger, waiting.resources)


def _lock_reviewed(ledger: _Ledger, event: RequestReviewed, resource_ids: tuple[str, ...],
                   tenant: TenantPolicy, rule: Rule, attempt: str) -> None:
    """Lock the request a review tried to subvert (its deny is already emitted)."""
    seconds = tenant.locks.request_lock_s
    until = event.at + timedelta(seconds=seconds)
    ledger.lock_request(event.request_id, resource_ids, until, rule,
                        f"{attempt} by {event.reviewer.id}: request {event.request_id} "
                        f"locked for {seconds} s, until {format_time(until)}")


def _on_withdrawn(ledger: _Ledger, event: RequestWithdrawn) -> None:
    grant = ledger.live(event.request_id)
    if grant is not None:
        ledger.revoke(grant, rules.REQUEST_WITHDRAWN,
                      f"the subject withdrew it: grant {grant.request_id} revoked")
    waiting = ledger.waiting(event.request_id)
    if waiting is not None:
        ledger.pending.remove(waiting)
        ledger.deny(event.request_id, _ids(waiting.resources), rules.REQUEST_WITHDRAWN,
                    "withdrawn while waiting for review")


def _on_task_completed(ledger: _Ledger, event: TaskCompleted) -> None:
    grant = ledger.live(event.request_id)
    if grant is not None:
        ledger.revoke(grant, rules.TASK_COMPLETED,
                      f"its task is done: grant {grant.request_id} revoked")


def _on_session_started(ledger: _Ledger, event: SessionStarted,
                        tenant: TenantPolicy) -> None:
    grant = ledger.live(event.request_id)
    if grant is not None and _covering(ledger, event.request_id, event.resource) is None:
        ledger.lock_subject(event.at + timedelta(seconds=tenant.locks.default_s),
                            rules.SESSION_OUT_OF_SCOPE,
                            f"session {event.session_id} opened {event.resource} on grant "
                            f"{event.request_id}, which does not cover it", event.request_id)
        return
    # Without a live grant the session waits for one: its approval may still be on its way.
    held = None if grant is not None else event.at + timedelta(seconds=tenant.sessions.grace_s)
    ledger.sessions.append(Session(event.session_id, event.request_id, event.resource,
                                   event.at, held))
    del ledger.sessions[:-tenant.sessions.max_tracked]
    if held is not None and tenant.sessions.grace_s == 0:
        _expire(ledger, event.at)


def _on_session_activity(ledger: _Ledger, event: SessionActivity,
                         tenant: TenantPolicy) -> None:
    session = next((s for s in ledger.sessions if s.session_id == event.session_id), None)
    if session is not None and session.held_until is not None:
        return  # decided when the hold ends: with a covering grant or by a lock
    if _covering(ledger, None, event.resource) is None:
        ledger.lock_subject(event.at + timedelta(seconds=tenant.locks.default_s),
                            rules.SESSION_OUT_OF_SCOPE,
                            f"session {event.session_id} did {event.action!r} on "
                            f"{event.resource}, which no live grant covers",
                            session.request_id if session is not None else None)


def _on_session_ended(ledger: _Ledger, event: SessionEnded) -> None:
    ledger.sessions = [s for s in ledger.sessions if s.session_id != event.session_id]


def _on_lock_released(ledger: _Ledger, event: LockReleased) -> None:
    by = f" by {event.by}" if event.by else ""
    # A release names its target; one keyed to this subject but naming another changes
    # nothing here (the other subject's state lives under its own key).
    if event.target.subject == event.subject.id and ledger.locked_until is not None:
        ledger.locked_until = None
        ledger.emit("unlock", rules.LOCK_RELEASED, f"subject lock released{by}")
    lock = ledger.request_lock(event.target.request_id)
    if lock is not None:
        ledger.request_locks.remove(lock)
        ledger.emit("unlock", rules.LOCK_RELEASED, f"lock on {lock.request_id} released{by}",
                    request_id=lock.request_id, targets=(lock.request_id,))


def _apply(ledger: _Ledger, event: InputEvent, tenant: TenantPolicy) -> dict[str, object]:
    """The one dispatch from event type to rules; returns the state fields it changed
    beyond the ledger's (grants, pending, locks)."""
    match event:
        case RequestCreated():
            return _on_request_created(ledger, event, tenant)
        case RequestReviewed():
            return _on_review(ledger, event, tenant)
        case RequestWithdrawn():
            _on_withdrawn(ledger, event)
        case TaskCompleted():
            _on_task_completed(ledger, event)
        case LockReleased():
            _on_lock_released(ledger, event)
        case SessionStarted():
            _on_session_started(ledger, event, tenant)
        case SessionActivity():
            _on_session_activity(ledger, event, tenant)
        case SessionEnded():
            _on_session_ended(ledger, event)
    return {}


def decide(
    state: SubjectState, event: InputEvent | ClockTick, now: datetime, policy: Policy
) -> tuple[SubjectState, tuple[Verdict, ...]]:
    """Apply one event to one subject's state in one tenant.

    Whatever ran out by ``now`` (grants, pending reviews, locks) ends first. A redelivered
    event (its id already applied) returns the state unchanged and no verdict. A
    :class:`ClockTick` only ends what ran out; it is not remembered as applied, since
    running it again finds nothing left to end.
    """
    if isinstance(event, ClockTick):
        ledger = _Ledger(state, event)
        tenant = policy.for_tenant(event.tenant)
        if tenant is not None:
            ledger.lock_s = tenant.locks.default_s
        _expire(ledger, now)
        sessions = tuple(ledger.sessions)
        if not ledger.verdicts and sessions == state.sessions:
            return state, ()
        return replace(state, grants=tuple(ledger.grants), pending=tuple(ledger.pending),
                       request_locks=tuple(ledger.request_locks),
                       locked_until=ledger.locked_until, sessions=sessions), \
            tuple(ledger.verdicts)
    if event.event_id in state.applied:
        return state, ()
    applied = (*state.applied, event.event_id)[-APPLIED_EVENT_MEMORY:]
    tenant = policy.for_tenant(event.tenant)
    if tenant is None:
        refused = _Ledger(state, event)
        refused.deny(getattr(event, "request_id", None), (), rules.UNKNOWN_TENANT,
                     f"tenant {event.tenant!r} is not in policy {policy.version}")
        return replace(state, applied=applied, kind=refused.kind, owner=refused.owner), \
            tuple(refused.verdicts)
    ledger = _Ledger(state, event)
    ledger.lock_s = tenant.locks.default_s
    try:
        _expire(ledger, now)
        changed = _apply(ledger, event, tenant)
    except Exception as exc:  # noqa: BLE001 - errors are data here: the event is denied.
        failed = _Ledger(state, event)
        failed.deny(getattr(event, "request_id", None), (), rules.EVALUATION_ERROR,
                    f"policy evaluation failed ({type(exc).__name__}: {exc}); denied to "
                    "fail closed")
        return replace(state, applied=applied, kind=failed.kind, owner=failed.owner), \
            tuple(failed.verdicts)
    # One construction per event (dataclasses.replace costs more than a decision here).
    new_state = SubjectState(
        grants=tuple(ledger.grants),
        applied=applied,
        pending=tuple(ledger.pending),
        locked_until=ledger.locked_until,
        request_locks=tuple(ledger.request_locks),
        sessions=tuple(ledger.sessions),
        recent_requests=changed.get("recent_requests", state.recent_requests),  # type: ignore[arg-type]
        break_glass_uses=changed.get("break_glass_uses", state.break_glass_uses),  # type: ignore[arg-type]
        seen=changed.get("seen", state.seen),  # type: ignore[arg-type]
        kind=ledger.kind,
        owner=ledger.owner,
    )
    return new_state, tuple(ledger.verdicts)


