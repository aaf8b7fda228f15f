"""Identities as authority compares them: one canonical form, used everywhere.

Whether a reviewer is the subject, is listed for an environment or holds a listed key, and
whether an operator is listed or is the subject, are all asked of :func:`canonical_id`,
never of the raw strings: ``Carol@example.com``, ``carol@example.com`` and
``car\\u200bol@example.com`` are one person to an attacker and must be one to the policy.

The canonical form is :mod:`schemas.canonical`'s (invisible characters removed, NFKC,
case-folded), shared with the resource catalog and labels. Ids are still shown and signed
as sent; only the comparison is canonical.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.canonical import INVISIBLE, canonical_id

__all__ = ["INVISIBLE", "canonical_id", "listed", "same_identity"]


def same_identity(one: str, other: str) -> bool:
    """Whether ``one`` and ``other`` name the same identity."""
    return one == other or canonical_id(one) == canonical_id(other)


def listed(identity: str, ids: Iterable[str]) -> bool:
    """Whether ``identity`` is one of ``ids``, compared canonically."""
    wanted = canonical_id(identity)
    return any(canonical_id(item) == wanted for item in ids)
