"""The policy: what the pure core enforces, parsed from a reviewed TOML text.

``[defaults]`` holds every section; ``[tenants.NAME]`` replaces whole sections for one
tenant. Tenants named nowhere get the defaults, or are refused (``unknown_tenants``).
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from functools import cache
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from schemas._base import TenantName
from schemas.decisions import PolicyRef
from schemas.errors import PolicyError
from schemas.events import Sensitivity, SubjectKind
from schemas.policy_catalog import CatalogEntry, CatalogPolicy, Label, LimitsPolicy
from schemas.policy_keys import OperatorKey, ReviewerKey
from schemas.policy_lifecycle import (
    BreakGlassPolicy,
    Name,
    NoticesPolicy,
    ReviewerSet,
    StepUpPolicy,
    Threshold,
    TtlLimit,
    TtlPolicy,
)

__all__ = [
    "SENSITIVITY_RANK",
    "WEEKDAYS",
    "BaselinePolicy",
    "BreakGlassPolicy",
    "CapsPolicy",
    "CatalogEntry",
    "CatalogPolicy",
    "ExclusiveGroup",
    "IdentityPolicy",
    "JustificationPolicy",
    "LimitsPolicy",
    "LoadedPolicy",
    "LocksPolicy",
    "NoticesPolicy",
    "OperatorKey",
    "Policy",
    "ReviewerKey",
    "ReviewerSet",
    "SessionsPolicy",
    "StepUpPolicy",
    "TenantPolicy",
    "TimePolicy",
    "TimeWindow",
    "TtlLimit",
    "TtlPolicy",
    "parse_policy",
]

SENSITIVITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
"""Order of sensitivity levels; ``never`` in a threshold means the rule is off."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Section(BaseModel):
    # Numbers and switches are strict (TOML `true` is no count, "3" no number); strings
    # such as "08:00" still become times.
    model_config = ConfigDict(frozen=True, extra="forbid")


class IdentityPolicy(_Section):
    """Who may ask at all: issuers per subject kind, which kinds must be attested and which
    must name an owner."""

    allowed_issuers: dict[SubjectKind, tuple[Name, ...]] = Field(default_factory=dict)
    """Per kind, the accepted ``subject.issuer`` values; a kind not listed accepts any."""
    require_attestation: tuple[SubjectKind, ...] = ("workload", "agent")
    """Kinds that must be attested; listing either machine kind (workload, agent) requires
    both, so claiming the other kind dodges nothing."""
    require_owner: tuple[SubjectKind, ...] = ()
    """Kinds that must name ``subject.owner`` (the accountable team or person); as above,
    either machine kind listed requires both."""






class JustificationPolicy(_Section):
    """From which sensitivity a reason and a ticket are required."""

    reason_from: Threshold = "medium"
    ticket_from: Threshold = "high"
    ticket_pattern: str = r"^[A-Z][A-Z0-9]+-[0-9]+$"

    @field_validator("ticket_pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc}); e.g. \"^OPS-[0-9]+$\"") \
                from exc
        return pattern


class CapsPolicy(_Section):
    """How much one request and one subject may hold."""

    max_resources_per_request: int = Field(strict=True, default=3, ge=1, le=10_000)
    max_active_resources: int = Field(strict=True, default=3, ge=1, le=10_000)
    strategy: Literal["revoke_oldest", "deny_new"] = "revoke_oldest"


class ExclusiveGroup(_Section):
    """Sides a subject may not hold at once: each env and each role named is one side."""

    name: Name
    envs: tuple[Label, ...] = ()
    roles: tuple[Label, ...] = ()
    strategy: Literal["revoke_older", "deny_new"] = "revoke_older"

    @model_validator(mode="after")
    def _two_sides(self) -> ExclusiveGroup:
        if len(set(self.envs)) + len(set(self.roles)) < 2:
            raise ValueError(
                f"group {self.name!r} has fewer than two sides; list at least two envs or "
                "roles, e.g. envs = [\"prod\", \"research\"]"
            )
        return self


class TimeWindow(_Section):
    """When requests for matching resources may be approved without a human."""

    envs: tuple[Label, ...] = ()
    """Environments this window covers; empty covers all."""
    sensitivity_from: Sensitivity = "low"
    timezone: str = "UTC"
    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(8, 0)
    end: time = time(18, 0)
    outside: Literal["escalate", "deny"] = "escalate"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r}; use an IANA name such as "
                             "\"Europe/Berlin\"") from exc
        return zone

    @model_validator(mode="after")
    def _start_before_end(self) -> TimeWindow:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} is not before end {self.end}")
        return self








class BaselinePolicy(_Section):
    """Normal behaviour: request rate per subject, and what a workload usually asks for."""

    max_requests: int = Field(strict=True, default=30, ge=1, le=10_000)
    window_s: int = Field(strict=True, default=3600, gt=0)
    lock_s: int = Field(strict=True, default=3600, gt=0)
    novel_workload: Literal["escalate", "off"] = "escalate"
    """A workload's or agent's first request for an env/sensitivity pair (rule
    baseline-novel); the name predates agents, which it covers too (issue H)."""


class LocksPolicy(_Section):
    """How long a lock lasts when the rule that locks names no duration."""

    default_s: int = Field(strict=True, default=3600, gt=0)
    """Subject locks of the session rules (a session without grant or out of scope)."""
    request_s: int | None = Field(strict=True, default=None, gt=0)
    """Request locks: a validly signed self-approval locks the request it names for this
    long; unset, ``default_s`` applies."""

    @property
    def request_lock_s(self) -> int:
        """How long a request lock lasts (``request_s``, else ``default_s``)."""
        return self.default_s if self.request_s is None else self.request_s


class SessionsPolicy(_Section):
    """How sessions must match live grants."""

    grace_s: int = Field(strict=True, default=30, ge=0, le=3600)
    """How long a session may wait for the approval of a grant not seen yet (the two arrive
    on different topics, in no fixed order) before the subject is locked. A session on a
    grant this subject's state knows ended gets no grace: it locks at once."""
    max_tracked: int = Field(strict=True, default=64, ge=1, le=10_000)
    """Open sessions remembered per subject: the oldest settled ones are forgotten first; a
    session waiting for its grant never is, and one more than this many waiting locks the
    subject at once (rule ``session-without-grant``)."""


class TimePolicy(_Section):
    """How far a producer's ``at`` may be from the broker's time (issue H)."""

    max_skew_s: int = Field(strict=True, default=300, ge=0, le=86_400)
    """Beyond this many seconds from the broker's append time an event is not applied:
    requests and reviews are denied (rule clock-skew), other events dead-lettered."""


class TenantPolicy(_Section):
    """Every rule's settings for one tenant."""

    identity: IdentityPolicy = IdentityPolicy()
    ttl: TtlPolicy = TtlPolicy()
    justification: JustificationPolicy = JustificationPolicy()
    caps: CapsPolicy = CapsPolicy()
    exclusive: tuple[ExclusiveGroup, ...] = (ExclusiveGroup(name="prod-vs-research",
                                                            envs=("prod", "research")),)
    windows: tuple[TimeWindow, ...] = ()
    step_up: StepUpPolicy = StepUpPolicy()
    break_glass: BreakGlassPolicy = BreakGlassPolicy()
    baseline: BaselinePolicy = BaselinePolicy()
    locks: LocksPolicy = LocksPolicy()
    sessions: SessionsPolicy = SessionsPolicy()
    time: TimePolicy = TimePolicy()
    operators: tuple[OperatorKey, ...] = ()
    """Keys of the operators who may release locks early; none listed: locks end only when
    they expire."""
    catalog: CatalogPolicy = CatalogPolicy()
    limits: LimitsPolicy = LimitsPolicy()
    notices: NoticesPolicy = NoticesPolicy()

    @model_validator(mode="after")
    def _consistent(self) -> TenantPolicy:
        if self.ttl.default_s > self.ttl.max_s:
            raise ValueError(f"ttl.default_s ({self.ttl.default_s}) exceeds ttl.max_s "
                             f"({self.ttl.max_s}); lower default_s or raise max_s")
        for number, limit in enumerate(self.ttl.limits):
            if limit.default_s > limit.max_s:
                raise ValueError(f"ttl.limits[{number}].default_s exceeds its max_s")
        return self


class Policy(_Section):
    """A reviewed policy text: one version, defaults and per-tenant sections."""

    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    unknown_tenants: Literal["defaults", "deny"] = "defaults"
    defaults: TenantPolicy = TenantPolicy()
    tenants: dict[TenantName, TenantPolicy] = Field(default_factory=dict)
    """Per tenant; names follow the events' tenant pattern (schemas._base.TENANT_PATTERN)."""

    def for_tenant(self, tenant: str) -> TenantPolicy | None:
        """The tenant's settings; None when unknown tenants are refused."""
        found = self.tenants.get(tenant)
        if found is not None:
            return found
        return self.defaults if self.unknown_tenants == "defaults" else None

    @model_validator(mode="before")
    @classmethod
    def _tenants_inherit_defaults(cls, data: Any) -> Any:
        # A tenant section replaces whole sections of [defaults]; the rest it inherits.
        if isinstance(data, dict) and isinstance(data.get("tenants"), dict):
            defaults = data.get("defaults") or {}
            if isinstance(defaults, dict):
                data = {**data, "tenants": {
                    name: {**defaults, **section} if isinstance(section, dict) else section
                    for name, section in data["tenants"].items()
                }}
        return data


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy together with the reference every decision pins."""

    policy: Policy
    ref: PolicyRef


_FIXES = {
    "extra_forbidden": "remove it, or check its spelling against schemas/json/policy.schema.json",
    "missing": "add it",
    "string_pattern_mismatch": "tenant names are lower-case letters, digits and hyphens "
                               "(as events must spell them); rename the section",
}


@cache
def _field_names() -> list[str]:
    """Every field name of the policy's models, for "did you mean" on a misspelt key."""
    names: set[str] = set()
    for model in [value for value in globals().values()
                  if isinstance(value, type) and issubclass(value, BaseModel)]:
        names.update(model.model_fields)
    return sorted(names)


def _siblings(where: str) -> list[str]:
    """The field names of the section holding the key at ``where``, matched first."""
    model: type[BaseModel] = Policy
    for part in where.split(".")[:-1]:
        field = model.model_fields.get(part)
        if field is None:
            continue  # a tenant name or a list index: the same model's items
        inner = _model_in(field.annotation)
        if inner is None:
            return []
        model = inner
    return sorted(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (itself, or inside a tuple, dict or union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _problems(errors: Sequence[ErrorDetails]) -> list[str]:
    """One line per bad location: where, what, what was given, the fix. pydantic reports a
    value failing a union once per member, each with the member's tag in its location
    (``literal['low',...]``): those are merged into one line that lists every choice."""
    merged: dict[str, tuple[list[str], ErrorDetails]] = {}
    for error in errors:
        parts = [str(part) for part in error["loc"]]
        where = ".".join(part for part in parts if "[" not in part) or "(top level)"
        message = error["msg"]
        if error["type"] == "tuple_type":
            message = "Input should be a list (in TOML: [...])"
        messages, _ = merged.setdefault(where, ([], error))
        if message not in messages:
            messages.append(message)
    lines = []
    for where, (messages, error) in merged.items():
        should = "Input should be "
        if all(message.startswith(should) for message in messages):
            messages = [should + " or ".join(m.removeprefix(should) for m in messages)]
        line = f"  - {where}: {' or '.join(messages)}"
        if error["type"] != "missing":
            line += f" (got {error['input']!r})"
        if error["type"] == "extra_forbidden":
            key = where.rsplit(".", 1)[-1]
            close = (difflib.get_close_matches(key, _siblings(where), n=1, cutoff=0.6)
                     or difflib.get_close_matches(key, _field_names(), n=1, cutoff=0.6))
            line += (f"; did you mean {close[0]}? " if close else "; ") + _FIXES[error["type"]]
        elif error["type"] in _FIXES:
            line += f"; {_FIXES[error['type']]}"
        lines.append(line)
    return lines


def parse_policy(text: str, source: str = "<policy>") -> LoadedPolicy:
    """Parse and validate a TOML policy text; ``sha256`` is over the exact bytes given.

    Raises:
        PolicyError: naming the source, each bad field's location, the problem and the fix.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: invalid policy:\n" + "\n".join(
            _problems(exc.errors(include_url=False)))) from exc
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedPolicy(policy=policy, ref=PolicyRef(version=policy.version, sha256=digest))


