"""Producer-controlled text on a terminal: shown, never obeyed, and shortened at both ends."""

from __future__ import annotations

import pytest

from streams.printable import printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("alice", "alice"),
    ("r-1\n12:00:00  DENY", "r-1\\n12:00:00  DENY"),
    ("a\rb\tc", "a\\rb\\tc"),
    ("\x1b[2K\x1b[1Aok", "\\x1b[2K\\x1b[1Aok"),
    ("del\x7f", "del\\x7f"),
    ("c1\x85\x9b", "c1\\x85\\x9b"),
    ("zw\u200bj\u200d", "zw\\u200bj\\u200d"),
    ("bidi\u202egnp.exe", "bidi\\u202egnp.exe"),
    ("iso\u2066x\u2069", "iso\\u2066x\\u2069"),
    ("join\u2060\u2064", "join\\u2060\\u2064"),
    ("bom\ufeff", "bom\\ufeff"),
    ("lines\u2028\u2029", "lines\\u2028\\u2029"),
    ("back\\slash", "back\\\\slash"),  # so a literal "\n" never passes for an escaped one
    ("accents é and 漢字", "accents é and 漢字"),
])
def test_control_invisible_and_bidi_characters_are_shown_escaped(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_every_listed_code_point_is_escaped() -> None:
    listed = [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x200B, 0x2010),
              *range(0x202A, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x206A),
              0xFEFF, 0x2028, 0x2029]
    for code in listed:
        assert printable(chr(code)).startswith("\\"), hex(code)


def test_non_text_values_are_shown_as_text() -> None:
    assert printable(None) == "None"
    assert printable(42) == "42"


def test_shortening_keeps_both_ends_within_the_width() -> None:
    long = "spiffe://acme.example/ns/ci/sa/deployer-7a7600"
    short = printable(long, width=30)
    assert len(short) == 30
    assert short.startswith("spiffe://acme")
    assert short.endswith("deployer-7a7600")
    assert "…" in short
    assert printable("alice", width=30) == "alice"
    assert printable(long, width=len(long)) == long


def test_shortening_never_cuts_an_escape_in_half() -> None:
    shown = printable("\x1b" * 40, width=21)
    assert len(shown) <= 21
    head, tail = shown.split("…")
    assert head == "\\x1b" * (len(head) // 4)
    assert tail == "\\x1b" * (len(tail) // 4)
