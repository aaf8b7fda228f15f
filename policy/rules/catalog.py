"""What a resource is: the policy's catalog, not the request's claim (issue H, finding 4).

:func:`resolve` turns a request's claimed resources into the effective ones every other
rule reads: repeated ids merged, envs and roles normalised (trimmed, case-folded), and
where the catalog names a resource its env and roles, with the stricter of its sensitivity
and the claim's. What it could not reconcile (a claim the catalog contradicts, an unknown
resource) its checks report.
"""

from __future__ import annotations

from dataclasses import dataclass

from policy.rules.base import Finding, RequestContext, Rule, per_policy
from schemas.events import Resource, Sensitivity
from schemas.policy import SENSITIVITY_RANK, CatalogPolicy
from schemas.policy_catalog import label

__all__ = ["REMEMBERED_ROLES", "RESOLVED_MEMORY", "RESOURCE_MISMATCH", "RESOURCE_UNKNOWN",
           "Resolved", "check_mismatch", "check_unknown_deny", "check_unknown_escalate",
           "resolve"]

RESOURCE_MISMATCH = Rule("resource-mismatch", "A request's env or roles for a resource must be "
                         "the policy catalog's, and one resource has one env per request.")
RESOURCE_UNKNOWN = Rule("resource-unknown", "A resource the policy's catalog does not list "
                        "is treated as its catalog.unknown setting says (escalate or deny).")


@dataclass(frozen=True, slots=True)
class Resolved:
    """A request's effective resources and what stood in the way of resolving them."""

    resources: tuple[Resource, ...]
    mismatches: tuple[str, ...] = ()
    """One phrase per contradicted claim (for the resource-mismatch reason)."""
    unknown: tuple[str, ...] = ()
    """Ids no catalog entry matches whose claim reaches ``catalog.unknown_from`` (only
    under ``escalate`` or ``deny``)."""


def _plain(resources: tuple[Resource, ...]) -> bool:
    """Whether every env and role of ``resources`` is a label already."""
    for resource in resources:
        env = resource.env
        if env != label(env):
            return False
        for role in resource.roles:
            if role != label(role):
                return False
    return True


_Claim = tuple[str, str, str, tuple[str, ...]]
"""One claimed resource as :func:`resolve` remembers it: id, env, sensitivity, roles."""
_One = tuple[tuple[Resource, ...], tuple[str, ...], bool]
"""What one claim resolves to on its own: effective resources (``()``: the claim stands),
mismatches, whether it is unknown."""

RESOLVED_MEMORY = 2048
"""How many claims :func:`resolve` remembers the resolution of, per catalog (then it
starts over). Only claims of at most :data:`REMEMBERED_ROLES` roles are kept, so with the
longest ids, envs and roles the contract allows a catalog's memory stays within about 8 MB
(ids of a few dozen characters: a few hundred KB), whatever requesters send."""

REMEMBERED_ROLES = 4
"""A claim naming more roles is resolved afresh each time (rare, and unbounded in size)."""


@per_policy
def _remembered(catalog: CatalogPolicy) -> dict[_Claim, _One]:
    """What each claim resolved to under ``catalog`` (frozen, so it resolves the same)."""
    del catalog  # the memory is per catalog; its contents come from resolve
    return {}


def resolve(resources: tuple[Resource, ...], catalog: CatalogPolicy) -> Resolved:
    """The effective resources of a request (the same tuple when nothing changes)."""
    if not (len(resources) == 1 or len({resource.id for resource in resources})
            == len(resources)):
        return _merged(resources, catalog)  # a repeated id: its claims are merged first
    if not catalog.resources and _plain(resources):
        # The common case (the packaged policy's): nothing to merge, normalise or look up,
        # so the claims stand, and only which are unknown from unknown_from up is asked.
        if catalog.unknown == "claim":
            return Resolved(resources)
        floor = SENSITIVITY_RANK[catalog.unknown_from]
        return Resolved(resources, (), tuple([
            resource.id for resource in resources
            if SENSITIVITY_RANK[resource.sensitivity] >= floor]))
    # Distinct ids: each claim resolves on its own, as it did before under this catalog
    # (issue M: the catalog's lookups and the effective resources once per claim, not per
    # request). A claim the catalog leaves as it is stays the claimed object itself.
    memory = _remembered(catalog)
    effective: list[Resource] = []
    mismatches: list[str] = []
    unknown: list[str] = []
    changed = False
    for resource in resources:
        claim = (resource.id, resource.env, resource.sensitivity, resource.roles)
        one = memory.get(claim)
        if one is None:
            alone = _merged((resource,), catalog)
            # () for a claim that stands: the request's own object is kept, not an equal one.
            one = (() if alone.resources == (resource,) else alone.resources,
                   alone.mismatches, bool(alone.unknown))
            if len(resource.roles) <= REMEMBERED_ROLES:
                if len(memory) >= RESOLVED_MEMORY:
                    memory.clear()
                memory[claim] = one
        placed, contradicted, unlisted = one
        if placed:
            effective += placed
            changed = True
        else:
            effective.append(resource)
        mismatches += contradicted
        if unlisted:
            unknown.append(resource.id)
    return Resolved(tuple(effective) if changed else resources, tuple(mismatches),
                    tuple(unknown))


def _merged(resources: tuple[Resource, ...], catalog: CatalogPolicy) -> Resolved:
    """The general resolution: repeated ids merged, every claim looked up."""
    merged: dict[str, tuple[set[str], Sensitivity, list[str]]] = {}
    for resource in resources:
        envs, sensitivity, roles = merged.setdefault(resource.id, (set(), "low", []))
        envs.add(label(resource.env))
        if SENSITIVITY_RANK[resource.sensitivity] > SENSITIVITY_RANK[sensitivity]:
            sensitivity = resource.sensitivity
        roles += [role for role in map(label, resource.roles) if role not in roles]
        merged[resource.id] = (envs, sensitivity, roles)
    effective: list[Resource] = []
    mismatches: list[str] = []
    unknown: list[str] = []
    for resource_id, (envs, sensitivity, roles) in merged.items():
        placed = sorted(envs)  # one resource per env claimed: every side stays visible
        if len(envs) > 1:
            mismatches.append(f"{resource_id} claimed in envs {' and '.join(sorted(envs))}")
        entry = catalog.entry(resource_id)
        if entry is None:
            if catalog.unknown != "claim" and (SENSITIVITY_RANK[sensitivity]
                                               >= SENSITIVITY_RANK[catalog.unknown_from]):
                unknown.append(resource_id)
        else:
            if entry.env is not None:
                if envs != {entry.env}:
                    mismatches.append(f"{resource_id} is in env {entry.env}, not "
                                      f"{' or '.join(sorted(envs - {entry.env}))}")
                placed = [entry.env]
            if entry.roles is not None:
                if roles and set(roles) != set(entry.roles):
                    mismatches.append(f"{resource_id} carries roles "
                                      f"{', '.join(entry.roles) or '(none)'}, not "
                                      f"{', '.join(roles)}")
                roles = list(entry.roles)
            if entry.sensitivity is not None and (
                    SENSITIVITY_RANK[entry.sensitivity] > SENSITIVITY_RANK[sensitivity]):
                sensitivity = entry.sensitivity
        effective += [Resource.model_construct(id=resource_id, env=env, sensitivity=sensitivity,
                                               roles=tuple(roles)) for env in placed]
    return Resolved(tuple(effective), tuple(mismatches), tuple(unknown))


def check_mismatch(ctx: RequestContext) -> tuple[Finding, ...]:
    """A claimed env or roles the catalog contradicts, or one id claimed in two envs."""
    if not ctx.mismatches:
        return ()
    return (Finding("deny", RESOURCE_MISMATCH, f"resource claims differ from the catalog: "
                    f"{'; '.join(ctx.mismatches)}"),)


def _unknown(ctx: RequestContext) -> str:
    return (f"{', '.join(ctx.unknown)} not in the catalog (catalog.unknown = "
            f"{ctx.tenant.catalog.unknown}, from {ctx.tenant.catalog.unknown_from})")


def check_unknown_deny(ctx: RequestContext) -> tuple[Finding, ...]:
    """Unknown resources under ``catalog.unknown = "deny"``."""
    if not ctx.unknown or ctx.tenant.catalog.unknown != "deny":
        return ()
    return (Finding("deny", RESOURCE_UNKNOWN, _unknown(ctx)),)


def check_unknown_escalate(ctx: RequestContext) -> tuple[Finding, ...]:
    """Unknown resources under ``catalog.unknown = "escalate"``."""
    if not ctx.unknown or ctx.tenant.catalog.unknown != "escalate":
        return ()
    return (Finding("escalate", RESOURCE_UNKNOWN, _unknown(ctx)),)
