"""The decision line of tail, simulate and demo: producer text can neither add a line nor
drive the terminal, and a long subject keeps both ends."""

from __future__ import annotations

from typing import Any

from streams.cli.printer import format_decision


def _decision(**fields: Any) -> dict[str, Any]:
    return {"action": "approve", "at": "2026-11-23T10:00:00Z", "subject": {"id": "alice"},
            "request_id": "r-1", "targets": [], "rule": {"id": "auto-approve"},
            "reason": "no rule objects; granted for 900 s", **fields}


FORGED = "r-1\n10:00:00  DENY     mallory                                  r-9"


def test_a_newline_in_a_request_id_cannot_forge_a_row() -> None:
    for colour in (False, True):
        line = format_decision(_decision(request_id=FORGED), colour=colour)
        assert "\n" not in line
        assert "r-1\\n10:00:00  DENY" in line


def test_targets_rule_and_reason_are_escaped_too() -> None:
    line = format_decision(_decision(action="revoke", targets=["r-2\r", "r-3\u202e"],
                                     rule={"id": "x\x1b[31m"}, reason="ended r-2\r\x9b"))
    assert "\r" not in line
    assert "\x1b" not in line
    assert "\u202e" not in line
    assert "r-2\\r,r-3\\u202e" in line
    assert "[x\\x1b[31m]" in line
    assert line.endswith("ended r-2\\r\\x9b")


def test_escape_sequences_in_a_subject_are_shown_not_run() -> None:
    line = format_decision(_decision(subject={"id": "\x1b[2K\x1b[1Aroot\u200b"}))
    assert "\x1b" not in line
    assert "\u200b" not in line
    assert "\\x1b[2K\\x1b[1Aroot\\u200b" in line


def test_a_long_subject_keeps_both_ends() -> None:
    subject = "spiffe://acme.example/ns/" + "x" * 60 + "/deployer-7a7600"
    line = format_decision(_decision(subject={"id": subject}))
    shown = line.split()[2]
    assert shown.startswith("spiffe://acme")
    assert shown.endswith("/deployer-7a7600")
    assert "…" in shown
    assert len(shown) == 40


def test_colour_codes_of_our_own_stay() -> None:
    assert format_decision(_decision(), colour=True).startswith("10:00:00  \x1b[32mAPPROVE")
