"""Signed events: their canonical bytes and the one check reviews and releases share.

A reviewer's ``request.reviewed`` and an operator's ``lock.released`` count only when signed
by a key the policy lists for the identity they name. Both are checked here, the same way:
the signed bytes are the UTF-8 JSON object of the event's bound fields plus ``schema``
(:func:`canonical_message`: keys sorted, no whitespace), the key is looked up by ``key_id``
among the signer's listed keys (holders compared canonically, policy.identities), and the
signature goes through :func:`policy.signatures.verify`.

Pure: the keys come from the policy; nothing is read here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import orjson

from policy.identities import same_identity
from policy.signatures import public_key_from_b64, verify

__all__ = ["ListedKey", "canonical_message", "signature_problem"]


class ListedKey(Protocol):
    """A public key the policy lists for one identity (a reviewer's or an operator's)."""

    @property
    def holder(self) -> str: ...
    @property
    def key_id(self) -> str: ...
    @property
    def public_key(self) -> str: ...


def canonical_message(schema: str, fields: Mapping[str, object]) -> bytes:
    """The bytes a signer signs: ``fields`` and ``schema`` as sorted, compact JSON."""
    return orjson.dumps({**fields, "schema": schema}, option=orjson.OPT_SORT_KEYS)


def signature_problem(what: str, signer: str, key_id: str | None, signature: str | None,
                      keys: Iterable[ListedKey], message: Callable[[str], bytes]) -> str | None:
    """Why ``signature`` does not show that ``signer`` made ``what``, or None when it does.

    ``what`` names the signed act in the reason (``the approval of r-1``); ``message(key_id)``
    gives the bytes that must have been signed with key ``key_id``. Missing, half-present,
    unlisted, unreadable and non-verifying signatures are all refused, each with its reason.
    """
    if key_id is None and signature is None:
        return f"{what} is unsigned"
    if key_id is None or signature is None:
        return f"{what} has a key_id or a signature but not both"
    key = next((key for key in keys
                if key.key_id == key_id and same_identity(key.holder, signer)), None)
    if key is None:
        return f"key {key_id!r} is not a key the policy lists for {signer}"
    try:
        # Validated when the policy loaded; a key that still fails to read is refused
        # the same way as a signature that does not verify.
        public = public_key_from_b64(key.public_key)
    except ValueError:
        return f"the signature of {what} does not verify with key {key_id!r}"
    if not verify(public, message(key_id), signature):
        return (f"the signature of {what} does not verify with key {key_id!r} (forged, "
                "altered or made for another event)")
    return None
