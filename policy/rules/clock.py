"""Whose clock decides: the broker's, never the producer's (issue H, trusted time).

An event's ``at`` is what its producer claims. The stream decides on the time the broker
appended the record (LogAppendTime), clamped per subject so time never runs backwards; an
event whose claim is further than ``time.max_skew_s`` from the broker's time is not applied
(requests and reviews are denied by :data:`CLOCK_SKEW`, other events dead-lettered with
error class :data:`CLOCK_SKEW_CLASS`, since they have no verdict of their own to carry it).
"""

from __future__ import annotations

from datetime import datetime

from policy.rules.base import Rule
from schemas._base import format_time
from schemas.policy import TenantPolicy

__all__ = ["CLOCK_SKEW", "CLOCK_SKEW_CLASS", "skew", "trusted_now"]

CLOCK_SKEW = Rule("clock-skew", "An event whose own time is further than time.max_skew_s "
                  "from the broker's time is not applied: requests and reviews are denied.")

CLOCK_SKEW_CLASS = "clock-skew"
"""The dead-letter error class of other events whose time is too far from the broker's."""


def trusted_now(clock: datetime | None, claimed: datetime, received: datetime | None
                ) -> datetime:
    """The time an event is decided at: the broker's ``received`` time, but never before
    the subject's last decision ``clock``; without a broker time (a replay line that has
    none) the event's own ``claimed`` time, as before issue H."""
    if received is None:
        return claimed
    return received if clock is None or clock < received else clock


def skew(claimed: datetime, received: datetime | None, tenant: TenantPolicy) -> str | None:
    """Why ``claimed`` is not to be believed, or None when it is within
    ``time.max_skew_s`` of ``received`` (or there is no broker time to compare with)."""
    if received is None:
        return None
    seconds = abs((claimed - received).total_seconds())
    if seconds <= tenant.time.max_skew_s:
        return None
    direction = "ahead of" if claimed > received else "behind"
    return (f"event time {format_time(claimed)} is {seconds:.0f} s {direction} the broker's "
            f"time {format_time(received)}, more than time.max_skew_s "
            f"{tenant.time.max_skew_s}; not applied")
