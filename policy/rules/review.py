"""Humans in the loop: when a request steps up to review, and how a review may decide it.

The review rules other than step-up are decided by ``policy.handlers.review`` when a review
arrives; ``pending-expired`` by ``policy.deadlines`` when nobody reviewed in time.
"""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule, reaches

__all__ = [
    "PENDING_EXPIRED",
    "REVIEWER_NOT_ALLOWED",
    "REVIEW_APPROVED",
    "REVIEW_DENIED",
    "REVIEW_NOT_PENDING",
    "REVIEW_SELF_APPROVAL",
    "REVIEW_SIGNATURE",
    "REVIEW_THRESHOLD",
    "STEP_UP",
    "check_step_up",
]

STEP_UP = Rule("step-up", "Access from the policy's sensitivity level up needs a human's "
               "approval.")
REVIEW_APPROVED = Rule("review-approved", "A pending request approved by an allowed reviewer "
                       "is granted.")
REVIEW_DENIED = Rule("review-denied", "A pending request denied by an allowed reviewer ends.")
REVIEW_NOT_PENDING = Rule("review-not-pending", "A review can only decide a request that is "
                          "waiting for review.")
REVIEW_SELF_APPROVAL = Rule("review-self-approval", "Nobody reviews their own request.")
REVIEWER_NOT_ALLOWED = Rule("reviewer-not-allowed", "Only reviewers the policy lists for the "
                            "request's environments may decide it.")
REVIEW_SIGNATURE = Rule("review-signature", "A review counts only with a valid Ed25519 "
                        "signature, by a key the policy lists for its reviewer, over the "
                        "request it decides; an unverified one changes nothing.")
REVIEW_THRESHOLD = Rule("review-threshold", "A request needing several approvals "
                        "(step_up.approvals) is granted only once that many distinct allowed "
                        "reviewers approved; each reviewer counts once.")
PENDING_EXPIRED = Rule("pending-expired", "A request nobody reviewed within its pending time "
                       "is denied.")


def check_step_up(ctx: RequestContext) -> tuple[Finding, ...]:
    level = ctx.tenant.step_up.from_sensitivity
    if reaches(ctx.rank, level):
        return (Finding("escalate", STEP_UP, f"sensitivity reaches {level}"),)
    return ()
