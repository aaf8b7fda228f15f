"""One readable line per decision, for ``jitwatch demo``, ``tail`` and ``simulate``."""

from __future__ import annotations

from typing import Any

__all__ = ["format_decision"]

_COLOURS = {"approve": "32", "deny": "31", "revoke": "33", "escalate": "35", "lock": "31;1",
            "unlock": "36"}


def format_decision(decision: dict[str, Any], colour: bool = False) -> str:
    """One line an operator can read: time, action, subject, request, rule and reason."""
    action = str(decision["action"]).upper()
    if colour:
        action = f"\x1b[{_COLOURS.get(decision['action'], '0')}m{action:<8}\x1b[0m"
    else:
        action = f"{action:<8}"
    at = str(decision["at"])[11:19]
    targets = ",".join(decision.get("targets") or []) or decision.get("request_id") or "-"
    subject = decision["subject"]["id"]
    if len(subject) > 40:
        subject = "…" + subject[-39:]
    return (f"{at}  {action} {subject:<40} {targets:<14} [{decision['rule']['id']}] "
            f"{decision['reason']}")
