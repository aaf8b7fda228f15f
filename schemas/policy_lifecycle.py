"""The policy's lifecycle sections (issue J): lifetimes and extensions, step-up with its
approval thresholds, break-glass with its follow-up, and expiry notices.

Split from schemas/policy.py (at its size bound), which re-exports them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from schemas.events import Sensitivity, SubjectKind
from schemas.policy_catalog import Label
from schemas.policy_keys import ReviewerKey

__all__ = ["BreakGlassPolicy", "Name", "NoticesPolicy", "ReviewerSet", "StepUpPolicy",
           "Threshold", "TtlLimit", "TtlPolicy"]

Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Threshold = Sensitivity | Literal["never"]
Seconds = Annotated[int, Field(strict=True, gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TtlLimit(_Section):
    """Lifetime limits for resources matching ``env`` and/or ``sensitivity_from``."""

    env: Label | None = None
    sensitivity_from: Sensitivity | None = None
    default_s: int = Field(strict=True, gt=0)
    max_s: int = Field(strict=True, gt=0)


class TtlPolicy(_Section):
    """How long grants live; the strictest matching limit of a request's resources applies."""

    default_s: int = Field(strict=True, default=3600, gt=0)
    max_s: int = Field(strict=True, default=8 * 3600, gt=0)
    over_max: Literal["clamp", "deny"] = "clamp"
    limits: tuple[TtlLimit, ...] = ()
    max_total_s: dict[Sensitivity, Seconds] = Field(default_factory=dict)
    """Issue J: the longest a grant may live from its grant to its last expiry, extensions
    included, by the highest sensitivity of its resources. A sensitivity not listed: the
    grant's whole life is bounded by ``max_s``, so by default an extension only tops a
    short grant up to what one request could have asked."""
    max_extensions: int = Field(strict=True, default=3, ge=0, le=100)
    """Issue J: how many extensions one grant may have (0: none)."""

    def total_s(self, sensitivity: str) -> int:
        """The whole-life bound of a grant whose highest sensitivity is ``sensitivity``."""
        limit: int = self.max_total_s.get(sensitivity, self.max_s)  # type: ignore[call-overload]
        return limit


class ReviewerSet(_Section):
    """Reviewer ids allowed to approve requests for ``envs`` (empty: every env)."""

    envs: tuple[Label, ...] = ()
    ids: tuple[Name, ...] = Field(min_length=1)


class StepUpPolicy(_Section):
    """From which sensitivity a human must approve, and who may."""

    from_sensitivity: Threshold = "high"
    pending_ttl_s: int = Field(strict=True, default=3600, gt=0)
    reviewers: tuple[ReviewerSet, ...] = ()
    reviewer_keys: tuple[ReviewerKey, ...] = ()
    """Keys approvals must be signed with; an approval signed by no listed key is refused."""
    approvals: dict[Sensitivity, Annotated[int, Field(strict=True, ge=1, le=10)]] = Field(
        default_factory=dict)
    """Issue J: how many distinct allowed reviewers must approve a request by the highest
    sensitivity of its resources (not listed: 1)."""

    def needed(self, sensitivity: str) -> int:
        """Approvals a request whose highest sensitivity is ``sensitivity`` needs."""
        count: int = self.approvals.get(sensitivity, 1)  # type: ignore[call-overload]
        return count


class BreakGlassPolicy(_Section):
    """Emergency access: approved at once, short-lived, reviewed afterwards, rationed."""

    enabled: StrictBool = True
    ttl_s: int = Field(strict=True, default=900, gt=0)
    max_per_window: int = Field(strict=True, default=1, ge=1)
    window_s: int = Field(strict=True, default=24 * 3600, gt=0)
    lock_s: int = Field(strict=True, default=3600, gt=0)
    kinds: tuple[SubjectKind, ...] = ("human",)
    """Issue J: the subject kinds that may break glass (rule break-glass-not-allowed)."""
    ignore_windows: StrictBool = False
    """Issue J: whether break-glass may pass ``deny`` time windows (before issue J it always
    did); ``escalate`` windows never hold break-glass up."""
    review_within_s: int = Field(strict=True, default=24 * 3600, gt=0)
    """Issue J: a break-glass grant's post-review is due this long after it was granted."""
    on_rejected: Literal["lock", "none"] = "lock"
    """Issue J: what a post-review that rejects the break-glass does to the subject:
    ``lock`` it for ``lock_s``, or ``none``."""


class NoticesPolicy(_Section):
    """Issue J: notices written to ``jit.notices`` (never to the decisions topic)."""

    before_expiry_s: tuple[Seconds, ...] = (900,)
    """How long before a grant expires a notice says so, one per entry (empty: none)."""
