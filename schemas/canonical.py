"""One canonical form of text that names something: identities, resource ids, labels.

Compared canonically, ``Carol@example.com`` and ``car\\u200bol@example.com`` are one
person, and ``db/pay\\u200bments`` or a fullwidth ``\\uff44\\uff42/payments`` is the
catalog's ``db/payments``: an attacker picks look-alikes, so the policy must not tell them
apart. Zero-width and other invisible format characters are removed, then Unicode NFKC,
case folding and NFKC again (case folding can undo a normalisation, so the second pass makes
the result stable). Ids are still shown and signed as sent; only comparisons use this form.
It lives in schemas/, the leaf every layer may import, because the policy's own models
normalise with it too.
"""

from __future__ import annotations

import unicodedata

__all__ = ["INVISIBLE", "canonical_id"]

INVISIBLE = frozenset("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d"
                      "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063"
                      "\u2064\u2066\u2067\u2068\u2069\u3164\ufeff\uffa0")
"""Characters that render as nothing (zero-width spaces and joiners, direction marks, the
soft hyphen, word joiner, byte-order mark, Hangul fillers): dropped before comparing."""

_DROP = {ord(char): None for char in INVISIBLE}


def canonical_id(identity: str) -> str:
    """The form two ids are compared in for authority (never shown, never signed)."""
    if identity.isascii():
        # The usual case, on the hot path (every env and role an exclusive group compares):
        # NFKC leaves ASCII as it is, no invisible character is ASCII, and ASCII case-folds
        # to lower case, so the full form below gives exactly this, ten times slower.
        return identity.lower()
    visible = identity.translate(_DROP)
    folded = unicodedata.normalize("NFKC", visible).casefold()
    return unicodedata.normalize("NFKC", folded).translate(_DROP)
