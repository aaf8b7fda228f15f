"""The policy's resource catalog and per-subject state limits (issue H, the trust boundary).

Split from schemas/policy.py, which re-exports them. A request's resources are claims: the
catalog says what a resource is (env, sensitivity, roles, owner), and ``limits`` bound what
one subject may make the watcher remember. Envs and roles are labels: compared trimmed and
case-folded everywhere (:func:`label`), so ``"Research"`` and ``"research "`` are
``research``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import cached_property, lru_cache
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from schemas.canonical import canonical_id
from schemas.events import Sensitivity

__all__ = ["CatalogEntry", "CatalogPolicy", "Label", "LimitsPolicy", "label", "resource_key"]


@lru_cache(maxsize=4096)  # the core labels every env and role of every request and grant
def label(text: str) -> str:
    """An env or role as compared: canonical (:mod:`schemas.canonical`: invisible
    characters removed, NFKC, case-folded) and trimmed."""
    return canonical_id(text).strip()


def resource_key(resource_id: str) -> str:
    """A resource id as the catalog matches it: canonical and trimmed, so a differently
    spelt or look-alike id finds the entry of the resource it names rather than escaping to
    ``unknown``."""
    return canonical_id(resource_id).strip()


def _label_or_pass(value: object) -> object:
    return label(value) if isinstance(value, str) else value


Label = Annotated[str, BeforeValidator(_label_or_pass),
                  StringConstraints(min_length=1, max_length=256)]
"""An env or role name in a policy, stored normalised (:func:`label`)."""

ResourcePattern = Annotated[str, BeforeValidator(
    lambda value: resource_key(value) if isinstance(value, str) else value),
    StringConstraints(min_length=1, max_length=512)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CatalogEntry(_Section):
    """What one resource (``id``) or every resource matching ``glob`` is. What an entry names
    overrides the request's claim; what it leaves out stays the claim's."""

    id: ResourcePattern | None = None
    """One resource id (compared trimmed and case-folded)."""
    glob: ResourcePattern | None = None
    """A shell-style pattern (``*``, ``?``, ``[abc]``) over resource ids, case-folded."""
    env: Label | None = None
    """The resource's environment; a request claiming another is denied (resource-mismatch)."""
    sensitivity: Sensitivity | None = None
    """The resource's sensitivity; a request's claim counts only when it is stricter."""
    roles: tuple[Label, ...] | None = None
    """The roles access to the resource carries; a request naming others is denied, one
    naming none gets these."""
    owner: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    """The team or person accountable for the resource (for auditors; decides nothing)."""

    @model_validator(mode="after")
    def _one_selector(self) -> CatalogEntry:
        if (self.id is None) == (self.glob is None):
            raise ValueError("a catalog entry names exactly one of id or glob, e.g. "
                             "id = \"db/orders\" or glob = \"db/*\"")
        return self


class CatalogPolicy(_Section):
    """Which resources the policy knows, and what happens to those it does not."""

    unknown: Literal["claim", "escalate", "deny"] = "claim"
    """A resource no entry matches: its claims count (``claim``), or from ``unknown_from``
    up it needs a human (``escalate``) or is refused (``deny``), rule resource-unknown."""
    unknown_from: Sensitivity = "low"
    """The claimed sensitivity from which ``escalate`` or ``deny`` applies to an unknown
    resource (``low``: every unknown resource)."""
    resources: tuple[CatalogEntry, ...] = ()
    """Entries by id or glob; an ``id`` entry wins over globs, globs go first to last."""

    @cached_property
    def exact_ids(self) -> dict[str, CatalogEntry]:
        """The ``id`` entries by id (the first of duplicates), worked out once."""
        found: dict[str, CatalogEntry] = {}
        for entry in self.resources:
            if entry.id is not None:
                found.setdefault(entry.id, entry)
        return found

    def entry(self, resource_id: str) -> CatalogEntry | None:
        """The entry that says what ``resource_id`` is, or None when none matches."""
        if not self.resources:
            return None
        key = resource_key(resource_id)
        exact = self.exact_ids.get(key)
        if exact is not None:
            return exact
        for entry in self.resources:
            if entry.glob is not None and fnmatchcase(key, entry.glob):
                return entry
        return None


class LimitsPolicy(_Section):
    """How much one subject may make the watcher remember; a request that would pass a
    limit is denied (rule state-limit). Sessions are bounded by ``sessions.max_tracked``
    and redelivery memory by the core's 64 event ids."""

    max_grants: int = Field(strict=True, default=100, ge=1, le=10_000)
    """Live grants and pending requests of one subject in one tenant, together."""
    max_seen: int = Field(strict=True, default=256, ge=1, le=10_000)
    """Env/sensitivity pairs remembered for a workload or agent (baseline-novel)."""
    max_tenants: int = Field(strict=True, default=16, ge=1, le=1_000)
    """Tenants one subject id holds state in."""
    max_request_ids: int = Field(strict=True, default=1024, ge=1, le=100_000)
    """Request ids one subject remembers at once (``request_retention_s``); about 60 bytes
    each in a stored value. A request that would pass it is denied (state-limit)."""
    request_retention_s: int = Field(strict=True, default=30 * 24 * 3600, ge=0)
    """How long a granted or escalated request's id stays remembered: until then the
    subject may not use it again (rule request-id-remembered). 0 remembers none."""
