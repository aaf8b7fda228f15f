"""What every rule area shares: a rule's identity, a check's finding and the request context.

A check answers one question about one new request and returns its findings as data (never
raises to say no): ``()`` when it has nothing to say. Every check returns a tuple, even the
ones that can find at most one thing, so the evaluator in :mod:`policy.rules` runs them all
the same way (one ``+=`` each) and a silent check allocates nothing.

Nothing here changes state: checks read the subject's holdings through :class:`Holdings`,
a read-only view the ledger (:mod:`policy.ledger`) satisfies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, TypeVar

from schemas.events import RequestCreated, Resource
from schemas.policy import SENSITIVITY_RANK, TenantPolicy
from schemas.state import Grant, Mark, Obligation, Pending, RequestLock, SubjectState

__all__ = [
    "Finding",
    "Holdings",
    "Outcome",
    "RequestContext",
    "Rule",
    "per_policy",
    "reaches",
    "top_rank",
    "top_sensitivity",
]


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's identity as auditors see it in every verdict it produces."""

    id: str
    description: str


Outcome = Literal["deny", "escalate"]
"""What a finding asks for; approval is what is left when nothing is found."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's objection to a request: deny it, or have a human look first.

    ``lock_s`` (seconds, 0 for none) is an effect of a denial: the subject is locked that
    long from the request's time, recorded by ``rule`` with ``lock_reason``. Only findings
    that end evaluation on their own carry one (a rate or ration beyond its limit).
    """

    outcome: Outcome
    rule: Rule
    reason: str
    lock_s: int = 0
    lock_reason: str = ""


_Section = TypeVar("_Section")
_Prepared = TypeVar("_Prepared")

PREPARED_POLICIES = 64
"""How many policy sections each :func:`per_policy` function remembers its answer for. A
process serves one loaded policy (a few tenants) at a time; a reload makes new sections,
and past the bound the old answers are dropped together."""


def per_policy(build: Callable[[_Section], _Prepared]) -> Callable[[_Section], _Prepared]:
    """``build``, answered once per policy section (issue M): what a check needs from a
    tenant's settings is worked out the first time and looked up after.

    Loaded policies are frozen, so a section's identity stands for its contents: the
    answer is kept against the section object itself (held, so its id is not reused while
    the answer is kept), never against an equal copy, and building it must not read
    anything else.
    """
    answers: dict[int, tuple[_Section, _Prepared]] = {}

    def prepared(section: _Section) -> _Prepared:
        kept = answers.get(id(section))
        if kept is not None and kept[0] is section:
            return kept[1]
        if len(answers) >= PREPARED_POLICIES:
            answers.clear()
        answer = build(section)
        answers[id(section)] = (section, answer)
        return answer

    prepared.__doc__ = build.__doc__
    prepared.__name__ = build.__name__
    return prepared


class Holdings(Protocol):
    """What checks may read of the subject: the ledger's current state, never to change."""

    @property
    def now(self) -> datetime: ...
    @property
    def grants(self) -> list[Grant]: ...
    @property
    def pending(self) -> list[Pending]: ...
    @property
    def locked_until(self) -> datetime | None: ...
    @property
    def request_locks(self) -> list[RequestLock]: ...
    @property
    def state(self) -> SubjectState: ...
    @property
    def requested(self) -> list[Mark]: ...
    @property
    def obligations(self) -> list[Obligation]: ...

    def remembers(self, request_id: str) -> bool: ...
    def live(self, request_id: str) -> Grant | None: ...
    def waiting(self, request_id: str) -> Pending | None: ...
    def request_lock(self, request_id: str | None) -> RequestLock | None: ...


class RequestContext:
    """Everything the checks of one new request read, worked out once per request.

    The gates (locks, rate) read only the first fields; :func:`policy.rules.evaluate` fills
    in the rest after them, as the request handler always did, so a refused request costs
    no lifetime or window arithmetic.
    """

    __slots__ = ("asked", "event", "held", "max_s", "mismatches", "outside", "rank", "recent",
                 "requested", "tenant", "unknown", "uses")

    def __init__(self, held: Holdings, event: RequestCreated, tenant: TenantPolicy,
                 recent: tuple[datetime, ...], uses: tuple[datetime, ...]) -> None:
        self.held = held
        self.event = event
        self.tenant = tenant
        self.recent = recent
        """This subject's recent requests within the baseline window, this one included."""
        self.uses = uses
        """Break-glass grants within the ration window (only read for break-glass)."""
        self.requested = 0
        """Requested (or default) lifetime in seconds; set by evaluate()."""
        self.max_s = 0
        """The strictest maximum lifetime of the resources asked; set by evaluate()."""
        self.outside: tuple[Finding, ...] = ()
        """One time-window finding per window the request falls outside of."""
        self.rank = 0
        """The highest sensitivity rank among the resources asked."""
        self.asked: frozenset[str] | set[str] = frozenset()
        """Distinct resource ids asked for."""
        self.mismatches: tuple[str, ...] = ()
        """Claims the catalog contradicts (policy.rules.catalog.resolve); ``event``'s
        resources are already the effective ones."""
        self.unknown: tuple[str, ...] = ()
        """Resources the catalog does not list, under its ``escalate`` or ``deny``."""


def top_rank(resources: tuple[Resource, ...]) -> int:
    """The highest sensitivity rank among ``resources``."""
    return max([SENSITIVITY_RANK[resource.sensitivity] for resource in resources])


def top_sensitivity(resources: tuple[Resource, ...]) -> str:
    """The highest sensitivity among ``resources`` (issue J: what ``ttl.max_total_s`` and
    ``step_up.approvals`` are looked up by)."""
    return max([resource.sensitivity for resource in resources],
               key=SENSITIVITY_RANK.__getitem__)


def reaches(rank: int, threshold: str) -> bool:
    """Whether resources of highest rank ``rank`` reach ``threshold`` (``never`` is never
    reached). Callers rank a request's resources once for every threshold they ask."""
    return threshold != "never" and rank >= SENSITIVITY_RANK[threshold]
