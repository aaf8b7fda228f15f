"""How much a subject holds: resources per request and distinct resources at once."""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule
from schemas.events import Resource
from schemas.policy import TenantPolicy
from schemas.state import Grant

__all__ = ["CAPS_PER_REQUEST", "MAX_ACTIVE_RESOURCES", "check_asked", "check_per_request",
           "deny_new"]

CAPS_PER_REQUEST = Rule("caps-per-request", "One request asks for at most the policy's number "
                        "of resources.")
MAX_ACTIVE_RESOURCES = Rule("max-active-resources", "A subject holds at most the policy's "
                            "number of distinct resources at once.")


def check_per_request(ctx: RequestContext) -> tuple[Finding, ...]:
    caps = ctx.tenant.caps
    asked = len(ctx.asked)
    # The stricter cap names the denial; equal limits would say the same thing twice.
    if asked > caps.max_resources_per_request < caps.max_active_resources:
        return (Finding("deny", CAPS_PER_REQUEST, f"request asks for {asked} resources, limit "
                        f"is {caps.max_resources_per_request} per request"),)
    return ()


def check_asked(ctx: RequestContext) -> tuple[Finding, ...]:
    """One request alone over the cap: no strategy can make room for it."""
    caps = ctx.tenant.caps
    asked = len(ctx.asked)
    if asked > caps.max_active_resources:
        return (Finding("deny", MAX_ACTIVE_RESOURCES, f"request asks for {asked} resources, "
                        f"limit is {caps.max_active_resources}"),)
    return ()


def deny_new(grants: list[Grant], resources: tuple[Resource, ...],
             tenant: TenantPolicy) -> Finding | None:
    """Under ``deny_new``, granting ``resources`` would put the subject over its cap.

    (Under ``revoke_oldest`` the grant is made and the oldest grants end: see
    ``policy.handlers.request.approve``.)
    """
    caps = tenant.caps
    if caps.strategy != "deny_new":
        return None
    held = {r.id for grant in grants for r in grant.resources}
    held |= {resource.id for resource in resources}
    if len(held) > caps.max_active_resources:
        return Finding("deny", MAX_ACTIVE_RESOURCES, f"subject would hold {len(held)} "
                       f"resources, limit is {caps.max_active_resources} (deny_new)")
    return None
