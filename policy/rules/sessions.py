"""Sessions: what a subject does with its access must be covered by its live grants.

No check for new requests: ``policy.handlers.sessions`` decides session events and
``policy.deadlines`` ends a session's wait for its grant.
"""

from __future__ import annotations

from policy.rules.base import Rule

__all__ = ["SESSION_OUT_OF_SCOPE", "SESSION_WITHOUT_GRANT"]

SESSION_WITHOUT_GRANT = Rule("session-without-grant", "A session must use a live grant of its "
                             "own subject; one that does not locks the subject.")
SESSION_OUT_OF_SCOPE = Rule("session-out-of-scope", "A session may only touch resources its "
                            "subject's live grants cover; anything else locks the subject.")
