"""Every rule the core can fire: a stable id and one sentence saying what it enforces."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULES", "Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's identity as auditors see it in every verdict it produces."""

    id: str
    description: str


def _rule(rule_id: str, description: str) -> Rule:
    return Rule(rule_id, description)


UNKNOWN_TENANT = _rule("unknown-tenant", "Events of a tenant the policy does not name are denied.")
SUBJECT_LOCKED = _rule("subject-locked", "A locked subject's requests are denied until the lock "
                       "ends.")
REQUEST_LOCKED = _rule("request-locked", "A locked request is denied until the lock ends.")
BASELINE_RATE = _rule("baseline-rate", "A subject asking more often than its baseline allows is "
                      "locked.")
IDENTITY_ISSUER = _rule("identity-issuer", "A subject's identity must come from an issuer the "
                        "policy allows for its kind.")
IDENTITY_ATTESTATION = _rule("identity-attestation", "Workloads and agents must present a "
                             "cryptographically attested identity.")
REQUEST_ID_REUSED = _rule("request-id-reused", "A new request may not reuse the id of a live "
                          "grant or a pending request.")
CAPS_PER_REQUEST = _rule("caps-per-request", "One request asks for at most the policy's number "
                         "of resources.")
MAX_ACTIVE_RESOURCES = _rule("max-active-resources", "A subject holds at most the policy's "
                             "number of distinct resources at once.")
EXCLUSIVE_ENVIRONMENTS = _rule("exclusive-environments", "A subject never holds access to two "
                               "mutually exclusive environments or roles at the same time.")
JUSTIFICATION_REASON = _rule("justification-reason", "Sensitive access needs a stated reason.")
JUSTIFICATION_TICKET = _rule("justification-ticket", "More sensitive access needs a ticket of "
                             "the agreed form.")
TTL_MAX = _rule("ttl-max", "A grant may not be asked for longer than the policy's maximum.")
BREAK_GLASS = _rule("break-glass", "Emergency access is granted at once for a short time and "
                    "reviewed afterwards.")
BREAK_GLASS_LIMIT = _rule("break-glass-limit", "Emergency access is rationed per subject; "
                          "beyond the ration the subject is locked.")
TIME_WINDOW = _rule("time-window", "Access to covered resources outside their time window "
                    "needs a human or is denied.")
STEP_UP = _rule("step-up", "Access from the policy's sensitivity level up needs a human's "
                "approval.")
BASELINE_NOVEL = _rule("baseline-novel", "A workload's first request for an environment and "
                       "sensitivity never granted to it needs a human.")
AUTO_APPROVE = _rule("auto-approve", "A request that no rule objects to is approved for its "
                     "time to live.")
REVIEW_APPROVED = _rule("review-approved", "A pending request approved by an allowed reviewer "
                        "is granted.")
REVIEW_DENIED = _rule("review-denied", "A pending request denied by an allowed reviewer ends.")
REVIEW_NOT_PENDING = _rule("review-not-pending", "A review can only decide a request that is "
                           "waiting for review.")
REVIEW_SELF_APPROVAL = _rule("review-self-approval", "Nobody reviews their own request.")
REVIEWER_NOT_ALLOWED = _rule("reviewer-not-allowed", "Only reviewers the policy lists for the "
                             "request's environments may decide it.")
REVIEW_SIGNATURE = _rule("review-signature", "An approval counts only with a valid Ed25519 "
                         "signature by a key the policy lists for its reviewer.")
PENDING_EXPIRED = _rule("pending-expired", "A request nobody reviewed within its pending time "
                        "is denied.")
TTL_EXPIRED = _rule("ttl-expired", "A grant ends when its time to live runs out.")
REQUEST_WITHDRAWN = _rule("request-withdrawn", "A grant or pending request ends when the "
                          "subject withdraws it.")
TASK_COMPLETED = _rule("task-completed", "A grant ends when the task it was made for is "
                       "reported done.")
SESSION_WITHOUT_GRANT = _rule("session-without-grant", "A session must use a live grant of its "
                              "own subject; one that does not locks the subject.")
SESSION_OUT_OF_SCOPE = _rule("session-out-of-scope", "A session may only touch resources its "
                             "subject's live grants cover; anything else locks the subject.")
LOCK_RELEASED = _rule("lock-released", "An operator may release a lock before it ends.")
LOCK_EXPIRED = _rule("lock-expired", "A lock ends when its duration runs out.")
EVALUATION_ERROR = _rule("evaluation-error", "When the policy cannot be evaluated for an event, "
                         "the event is denied.")

RULES: tuple[Rule, ...] = tuple(
    value for value in globals().values() if isinstance(value, Rule)
)
"""Every rule, in the order objections to a request are reported (first names the verdict)."""

