"""One readable line per decision (or notice), for ``jitwatch demo``, ``tail`` and ``simulate``.

Every field of a decision is a producer's claim (``tail`` prints whatever the decisions
topic holds), so each goes through :func:`streams.printable.printable`: a newline in an id
cannot add a row, nor an ESC sequence rewrite the line.
"""

from __future__ import annotations

from typing import Any

from streams.printable import printable

__all__ = ["SUBJECT_WIDTH", "format_decision", "format_notice"]

SUBJECT_WIDTH = 40
"""The subject column; a longer subject id is shortened in the middle."""

_COLOURS = {"approve": "32", "deny": "31", "revoke": "33", "escalate": "35", "lock": "31;1",
            "unlock": "36"}


def format_decision(decision: dict[str, Any], colour: bool = False) -> str:
    """One line an operator can read: time, action, subject, request, rule and reason."""
    action = f"{printable(str(decision['action']).upper()):<8}"
    if colour:
        action = f"\x1b[{_COLOURS.get(str(decision['action']), '0')}m{action}\x1b[0m"
    at = printable(str(decision["at"])[11:19])
    targets = printable(",".join(decision.get("targets") or [])
                        or decision.get("request_id") or "-")
    subject = printable(decision["subject"]["id"], width=SUBJECT_WIDTH)
    return (f"{at}  {action} {subject:<{SUBJECT_WIDTH}} {targets:<14} "
            f"[{printable(decision['rule']['id'])}] {printable(decision['reason'])}")


def format_notice(notice: dict[str, Any]) -> str:
    """A notice (issue J) in the same columns: ``NOTICE``, its kind in place of the rule."""
    at = printable(str(notice["at"])[11:19])
    subject = printable(notice["subject"]["id"], width=SUBJECT_WIDTH)
    request = printable(notice.get("request_id") or "-")
    return (f"{at}  {'NOTICE':<8} {subject:<{SUBJECT_WIDTH}} {request:<14} "
            f"[{printable(notice['kind'])}] {printable(notice['reason'])}")
