"""When no rule can be asked: an unknown tenant, or an evaluation that failed. Both deny.

No check for new requests: ``policy.decide`` applies these before and around every rule.
"""

from __future__ import annotations

from policy.rules.base import Rule

__all__ = ["EVALUATION_ERROR", "UNKNOWN_TENANT"]

UNKNOWN_TENANT = Rule("unknown-tenant", "Events of a tenant the policy does not name are "
                      "denied.")
EVALUATION_ERROR = Rule("evaluation-error", "When the policy cannot be evaluated for an event, "
                        "the event is denied.")
