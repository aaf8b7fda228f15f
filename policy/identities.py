"""Identities as authority compares them: one canonical form, used everywhere.

Whether a reviewer is the subject, is listed for an environment or holds a listed key, and
whether an operator is listed or is the subject, are all asked of :func:`canonical_id`,
never of the raw strings: ``Carol@example.com``, ``carol@example.com`` and
``car\\u200bol@example.com`` are one person to an attacker and must be one to the policy.

The canonical form: zero-width and other invisible format characters removed, then
Unicode NFKC, case folding and NFKC again (case folding can undo a normalisation, so the
second pass makes the result stable). Ids are still shown and signed as sent; only the
comparison is canonical.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["INVISIBLE", "canonical_id", "listed", "same_identity"]

INVISIBLE = frozenset("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d"
                      "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063"
                      "\u2064\u2066\u2067\u2068\u2069\u3164\ufeff\uffa0")
"""Characters that render as nothing (zero-width spaces and joiners, direction marks, the
soft hyphen, word joiner, byte-order mark, Hangul fillers): dropped before comparing."""

_DROP = {ord(char): None for char in INVISIBLE}


def canonical_id(identity: str) -> str:
    """The form two ids are compared in for authority (never shown, never signed)."""
    visible = identity.translate(_DROP)
    folded = unicodedata.normalize("NFKC", visible).casefold()
    return unicodedata.normalize("NFKC", folded).translate(_DROP)


def same_identity(one: str, other: str) -> bool:
    """Whether ``one`` and ``other`` name the same identity."""
    return one == other or canonical_id(one) == canonical_id(other)


def listed(identity: str, ids: Iterable[str]) -> bool:
    """Whether ``identity`` is one of ``ids``, compared canonically."""
    wanted = canonical_id(identity)
    return any(canonical_id(item) == wanted for item in ids)
