"""The canonical form's ASCII shortcut gives exactly what the full form gives."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from schemas.canonical import INVISIBLE, canonical_id


def _full(text: str) -> str:
    visible = "".join(char for char in text if char not in INVISIBLE)
    folded = unicodedata.normalize("NFKC", visible).casefold()
    return "".join(char for char in unicodedata.normalize("NFKC", folded)
                   if char not in INVISIBLE)


def test_no_invisible_character_is_ascii() -> None:
    assert not any(char.isascii() for char in INVISIBLE)


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_ascii_takes_the_shortcut_to_the_same_form(text: str) -> None:
    assert canonical_id(text) == _full(text)


@given(st.text())
def test_any_text_gets_the_full_form(text: str) -> None:
    assert canonical_id(text) == _full(text)


def test_look_alikes_meet() -> None:
    assert canonical_id("db/pay\u200bments") == canonical_id("\uff44\uff42/PAYMENTS") \
        == "db/payments"
