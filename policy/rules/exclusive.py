"""What a subject never holds together: mutually exclusive environments or roles."""

from __future__ import annotations

from collections.abc import Iterable

from policy.rules.base import Finding, RequestContext, Rule
from schemas.events import Resource
from schemas.policy import TenantPolicy
from schemas.policy_catalog import label
from schemas.state import Grant

__all__ = ["EXCLUSIVE_ENVIRONMENTS", "check_spans", "deny_new", "sides"]

EXCLUSIVE_ENVIRONMENTS = Rule("exclusive-environments", "A subject never holds access to two "
                              "mutually exclusive environments or roles at the same time.")


def sides(resources: Iterable[Resource], envs: tuple[str, ...],
          roles: tuple[str, ...]) -> set[str]:
    """Which sides of an exclusive group these resources stand on. Envs and roles compare
    normalised (a grant stored before issue H may hold them as sent)."""
    found = set()
    for resource in resources:
        env = label(resource.env)
        if env in envs:
            found.add(env)
        if resource.roles:  # most resources name none: skip building a generator
            found.update(f"role {role}" for role in map(label, resource.roles)
                         if role in roles)
    return found


def check_spans(ctx: RequestContext) -> tuple[Finding, ...]:
    """One request standing on two sides of a group, whatever the subject holds."""
    exclusive = ctx.tenant.exclusive
    if not exclusive:
        return ()
    found: list[Finding] = []
    for group in exclusive:
        spanned = sides(ctx.event.resources, group.envs, group.roles)
        if len(spanned) > 1:
            found.append(Finding("deny", EXCLUSIVE_ENVIRONMENTS, f"request spans mutually "
                                 f"exclusive {' and '.join(sorted(spanned))} ({group.name})"))
    return tuple(found)


def deny_new(grants: list[Grant], resources: tuple[Resource, ...],
             tenant: TenantPolicy) -> list[Finding]:
    """Under a group's ``deny_new``, granting ``resources`` would clash with live grants.

    (Under ``revoke_older`` the grant is made and the clashing grants end: see
    ``policy.handlers.request.approve``.)
    """
    found: list[Finding] = []
    for group in tenant.exclusive:
        if group.strategy != "deny_new":
            continue
        asked = sides(resources, group.envs, group.roles)
        if len(asked) != 1:
            continue
        clash = [grant.request_id for grant in grants
                 if sides(grant.resources, group.envs, group.roles) - asked]
        if clash:
            found.append(Finding("deny", EXCLUSIVE_ENVIRONMENTS, f"{''.join(asked)} excluded "
                                 f"by live grant(s) {', '.join(clash)} ({group.name}, "
                                 "deny_new)"))
    return found
