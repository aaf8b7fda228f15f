"""More time on a live grant (issue J): asked like a new request for the added time,
within the grant's whole-life bound and its number of extensions.

The checks of the request itself are the ones a new request is asked
(:data:`policy.rules.EXTENSION_OBJECTIONS`); this module holds what only an extension has.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from policy.rules.base import Finding, Rule
from schemas._base import format_time
from schemas.policy import TenantPolicy
from schemas.state import Grant

__all__ = ["EXTENSION_APPROVED", "EXTENSION_DENIED", "EXTENSION_LIMIT", "check_limit"]

EXTENSION_APPROVED = Rule("extension-approved", "An extension no rule objects to moves its "
                          "live grant's expiry; it never ends the grant.")
EXTENSION_DENIED = Rule("extension-denied", "Only a live grant that is not break-glass and "
                        "has no extension waiting for review can be extended; a denied "
                        "extension leaves the grant as it is.")
EXTENSION_LIMIT = Rule("extension-limit", "A grant may not be extended past ttl.max_total_s "
                       "of its whole life or more than ttl.max_extensions times.")


def check_limit(grant: Grant, expires_at: datetime, sensitivity: str,
                tenant: TenantPolicy) -> tuple[Finding, ...]:
    """Whether moving ``grant``'s expiry to ``expires_at`` stays within its whole-life
    bound (by its highest ``sensitivity``) and its number of extensions."""
    ttl = tenant.ttl
    found: tuple[Finding, ...] = ()
    if grant.extensions >= ttl.max_extensions:
        found = (Finding("deny", EXTENSION_LIMIT, f"grant {grant.request_id} was extended "
                         f"{grant.extensions} time(s), allowed {ttl.max_extensions}"),)
    bound = ttl.total_s(sensitivity)
    if expires_at - grant.granted_at > timedelta(seconds=bound):
        found += (Finding("deny", EXTENSION_LIMIT, f"grant {grant.request_id} would live "
                          f"from {format_time(grant.granted_at)} to {format_time(expires_at)}, "
                          f"more than ttl.max_total_s {bound} s for {sensitivity}"),)
    return found
