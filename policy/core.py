"""The pure decision function: ``decide(state, event, now, policy) -> (new_state, verdicts)``.

No clock, no I/O, no environment: the same inputs always give the same outputs, which is
what lets a file replay (``simulate``) stand as the oracle for the stream. Errors inside
evaluation come back as a ``deny`` verdict, never as an exception and never as an approve.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from policy.rules import (
    AUTO_APPROVE,
    EVALUATION_ERROR,
    EXCLUSIVE_ENVIRONMENTS,
    MAX_ACTIVE_RESOURCES,
    REQUEST_ID_REUSED,
    REQUEST_WITHDRAWN,
    REVIEW_NOT_PENDING,
    TASK_COMPLETED,
    TTL_EXPIRED,
    Rule,
)
from schemas._base import format_time
from schemas.decisions import Action, StateSummary
from schemas.events import (
    InputEvent,
    RequestCreated,
    RequestReviewed,
    RequestWithdrawn,
    TaskCompleted,
)
from schemas.policy import Policy
from schemas.state import Grant, SubjectState

__all__ = ["APPLIED_EVENT_MEMORY", "Verdict", "decide", "summarize"]

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


def summarize(grants: Iterable[Grant]) -> StateSummary:
    """Count live grants, distinct resource ids and environments held."""
    grants = tuple(grants)
    resources = {resource.id for grant in grants for resource in grant.resources}
    envs = sorted({resource.env for grant in grants for resource in grant.resources})
    return StateSummary(
        active_grants=len(grants), active_resources=len(resources), envs=tuple(envs)
    )


def _resource_ids(grants: Iterable[Grant]) -> set[str]:
    return {resource.id for grant in grants for resource in grant.resources}


class _Ledger:
    """Grants being changed by one event, and the verdicts that record each change."""

    def __init__(self, grants: tuple[Grant, ...], event: InputEvent) -> None:
        self.grants = list(grants)
        self.verdicts: list[Verdict] = []
        self._event = event
        self._count = 0

    def _emit(
        self,
        action: Action,
        rule: Rule,
        reason: str,
        before: StateSummary,
        *,
        at: datetime | None = None,
        request_id: str | None = None,
        targets: tuple[str, ...] = (),
        resources: tuple[str, ...] = (),
        expires_at: datetime | None = None,
        key: str | None = None,
    ) -> None:
        if key is None:
            key = f"{self._event.event_id}#{self._count}"
            self._count += 1
        self.verdicts.append(
            Verdict(
                action=action,
                rule=rule,
                reason=reason,
                at=self._event.at if at is None else at,
                request_id=request_id,
                targets=targets,
                resources=resources,
                expires_at=expires_at,
                before=before,
                after=summarize(self.grants),
                key=key,
            )
        )

    def live(self, request_id: str) -> Grant | None:
        return next((grant for grant in self.grants if grant.request_id == request_id), None)

    def grant(self, grant: Grant, rule: Rule, reason: str) -> None:
        before = summarize(self.grants)
        self.grants.append(grant)
        self._emit(
            "approve",
            rule,
            reason,
            before,
            request_id=grant.request_id,
            resources=tuple(resource.id for resource in grant.resources),
            expires_at=grant.expires_at,
        )

    def revoke(
        self, grant: Grant, rule: Rule, reason: str, *, at: datetime | None = None,
        key: str | None = None,
    ) -> None:
        before = summarize(self.grants)
        self.grants.remove(grant)
        self._emit(
            "revoke",
            rule,
            reason,
            before,
            at=at,
            request_id=grant.request_id,
            targets=(grant.request_id,),
            resources=tuple(resource.id for resource in grant.resources),
            key=key,
        )

    def deny(self, request_id: str | None, resources: tuple[str, ...], rule: Rule,
             reason: str) -> None:
        self._emit(
            "deny", rule, reason, summarize(self.grants),
            request_id=request_id, resources=resources,
        )


def _expire(ledger: _Ledger, now: datetime) -> None:
    # Oldest expiry first, so the verdicts read in the order the grants ran out.
    due = sorted(
        (grant for grant in ledger.grants if grant.expires_at <= now),
        key=lambda grant: grant.expires_at,
    )
    for grant in due:
        ledger.revoke(
            grant,
            TTL_EXPIRED,
            f"grant {grant.request_id} reached its expiry at {format_time(grant.expires_at)}",
            at=grant.expires_at,
            # Keyed by the grant, not the event that noticed: the stream's timer and a file
            # replay notice expiry through different events but must agree on the id.
            key=f"expire:{grant.request_id}:{format_time(grant.expires_at)}",
        )


def _conflicting_envs(envs: set[str], policy: Policy) -> list[tuple[str, ...]]:
    """Groups of mutually exclusive environments that ``envs`` holds more than one of."""
    return [
        tuple(sorted(envs.intersection(group)))
        for group in policy.exclusive_env_groups
        if len(envs.intersection(group)) > 1
    ]


def _objections(ledger: _Ledger, event: RequestCreated, policy: Policy) -> list[tuple[Rule, str]]:
    """Every rule that forbids this request outright, in rule order (deny wins)."""
    found: list[tuple[Rule, str]] = []
    if ledger.live(event.request_id) is not None:
        found.append(
            (REQUEST_ID_REUSED, f"request {event.request_id} already has a live grant")
        )
    asked = {resource.id for resource in event.resources}
    if len(asked) > policy.max_active_resources:
        found.append(
            (
                MAX_ACTIVE_RESOURCES,
                f"request asks for {len(asked)} resources, "
                f"limit is {policy.max_active_resources}",
            )
        )
    for clash in _conflicting_envs({resource.env for resource in event.resources}, policy):
        found.append(
            (
                EXCLUSIVE_ENVIRONMENTS,
                f"request spans mutually exclusive environments {' and '.join(clash)}",
            )
        )
    return found


def _on_request_created(ledger: _Ledger, event: RequestCreated, policy: Policy) -> None:
    resource_ids = tuple(resource.id for resource in event.resources)
    objections = _objections(ledger, event, policy)
    if objections:
        rule, reason = objections[0]
        if len(objections) > 1:
            reason += "; also: " + "; ".join(other for _, other in objections[1:])
        ledger.deny(event.request_id, resource_ids, rule, reason)
        return

    requested = event.ttl_s if event.ttl_s is not None else policy.default_ttl_s
    ttl = min(requested, policy.max_ttl_s)
    new = Grant(
        request_id=event.request_id,
        resources=event.resources,
        granted_at=event.at,
        expires_at=event.at + timedelta(seconds=ttl),
    )
    clamp = f" (requested {requested} s, clamped to the maximum)" if ttl < requested else ""
    ledger.grant(new, AUTO_APPROVE, f"no rule objects; granted for {ttl} s{clamp}")

    # The newest grant wins a conflict: older grants in an excluded environment end now.
    new_envs = {resource.env for resource in new.resources}
    for older in [grant for grant in ledger.grants if grant is not new]:
        older_envs = {resource.env for resource in older.resources}
        clashes = _conflicting_envs(new_envs | older_envs, policy)
        if clashes:
            ledger.revoke(
                older,
                EXCLUSIVE_ENVIRONMENTS,
                f"new grant {new.request_id} in {', '.join(sorted(new_envs))} excludes "
                f"{', '.join(sorted(older_envs - new_envs))}: older grant "
                f"{older.request_id} revoked",
            )

    # Over the cap: the oldest grants end first (ties in time keep arrival order).
    limit = policy.max_active_resources
    while len(held := _resource_ids(ledger.grants)) > limit:
        oldest = min(
            (grant for grant in ledger.grants if grant is not new),
            key=lambda grant: grant.granted_at,
        )
        ledger.revoke(
            oldest,
            MAX_ACTIVE_RESOURCES,
            f"subject holds {len(held)} resources, limit is {limit}: "
            f"oldest grant {oldest.request_id} revoked",
        )


def _end_grant(ledger: _Ledger, request_id: str, rule: Rule, why: str) -> None:
    grant = ledger.live(request_id)
    if grant is not None:
        ledger.revoke(grant, rule, f"{why}: grant {grant.request_id} revoked")


def _on_request_reviewed(ledger: _Ledger, event: RequestReviewed) -> None:
    ledger.deny(
        event.request_id,
        (),
        REVIEW_NOT_PENDING,
        f"request {event.request_id} is not waiting for review; "
        f"the {event.outcome} review by {event.reviewer.id} changes nothing",
    )


def _apply(ledger: _Ledger, event: InputEvent, policy: Policy) -> None:
    """The one dispatch from event type to rules."""
    match event:
        case RequestCreated():
            _on_request_created(ledger, event, policy)
        case RequestReviewed():
            _on_request_reviewed(ledger, event)
        case RequestWithdrawn():
            _end_grant(ledger, event.request_id, REQUEST_WITHDRAWN, "the subject withdrew it")
        case TaskCompleted():
            _end_grant(ledger, event.request_id, TASK_COMPLETED, "its task is done")
        case _:
            # Sessions and lock releases are recorded as applied; no rule acts on them yet.
            pass


def decide(
    state: SubjectState, event: InputEvent, now: datetime, policy: Policy
) -> tuple[SubjectState, tuple[Verdict, ...]]:
    """Apply one event to one subject's state in one tenant.

    Grants whose expiry is at or before ``now`` are revoked first. A redelivered event (its
    id already applied) returns the state unchanged and no verdict.
    """
    if event.event_id in state.applied:
        return state, ()
    applied = (*state.applied, event.event_id)[-APPLIED_EVENT_MEMORY:]
    ledger = _Ledger(state.grants, event)
    try:
        _expire(ledger, now)
        _apply(ledger, event, policy)
    except Exception as exc:  # noqa: BLE001 - errors are data here: the event is denied.
        failed = _Ledger(state.grants, event)
        failed.deny(
            getattr(event, "request_id", None),
            (),
            EVALUATION_ERROR,
            f"policy evaluation failed ({type(exc).__name__}: {exc}); denied to fail closed",
        )
        return SubjectState(grants=state.grants, applied=applied), tuple(failed.verdicts)
    new_state = SubjectState(grants=tuple(ledger.grants), applied=applied)
    return new_state, tuple(ledger.verdicts)
