"""Canonical identities (policy/identities.py): how authority compares who someone is."""

from __future__ import annotations

import pytest

from policy.identities import canonical_id, listed, same_identity


@pytest.mark.parametrize("look_alike", [
    "Carol@example.com",
    "CAROL@EXAMPLE.COM",
    "car\u200bol@example.com",       # zero-width space
    "\ufeffcarol@example.com",       # byte-order mark
    "carol\u200d@example.com",       # zero-width joiner
    "\uff43arol@example.com",        # fullwidth c (NFKC)
    "carol@example.com\u2060",       # word joiner
])
def test_look_alikes_are_the_same_identity(look_alike: str) -> None:
    assert same_identity(look_alike, "carol@example.com")
    assert listed(look_alike, ["bob", "carol@example.com"])


def test_different_people_stay_different() -> None:
    assert not same_identity("carol@example.com", "caro1@example.com")
    assert not same_identity("carol@example.com", "carol@example.org")
    assert not listed("carol", [])


def test_canonical_form_is_stable() -> None:
    for text in ("Stra\u00dfe", "\u212b", "\ufb01le", "ǅ"):
        once = canonical_id(text)
        assert canonical_id(once) == once
