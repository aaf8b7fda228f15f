"""Who may ask at all: the identity's kind, issuer, attestation and owner.

Every field of ``subject`` is a claim of the producer. What binds it: a SPIFFE id names a
machine (workload or agent) of its issuer's trust domain; a subject's kind is fixed by its
first request that passes these checks; and workloads and agents are one class for the
policy's lists (``require_attestation``, ``require_owner``) and for novelty, so claiming
one machine kind instead of the other dodges nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from policy.rules.base import Finding, RequestContext, Rule

__all__ = [
    "IDENTITY_ATTESTATION",
    "IDENTITY_ISSUER",
    "IDENTITY_KIND_CHANGED",
    "IDENTITY_KIND_MISMATCH",
    "IDENTITY_OWNER",
    "IDENTITY_RULES",
    "MACHINE_KINDS",
    "binds",
    "check_attestation",
    "check_issuer",
    "check_kind_changed",
    "check_kind_mismatch",
    "check_owner",
    "is_machine",
    "spiffe_trust_domain",
]

IDENTITY_ISSUER = Rule("identity-issuer", "A subject's identity must come from an issuer the "
                       "policy allows for its kind.")
IDENTITY_ATTESTATION = Rule("identity-attestation", "Workloads and agents must present a "
                            "cryptographically attested identity.")
IDENTITY_KIND_MISMATCH = Rule("identity-kind-mismatch", "A SPIFFE id names a workload or an "
                              "agent, never a human.")
IDENTITY_KIND_CHANGED = Rule("identity-kind-changed", "A subject's kind is fixed by its first "
                             "request that passed the identity checks; a request claiming "
                             "another kind is denied.")
IDENTITY_OWNER = Rule("identity-owner", "Subjects of the kinds the policy lists must name the "
                      "team or person accountable for them.")

IDENTITY_RULES = frozenset({IDENTITY_ISSUER, IDENTITY_ATTESTATION, IDENTITY_KIND_MISMATCH,
                            IDENTITY_KIND_CHANGED, IDENTITY_OWNER})
"""The rules whose silence means the request's identity claims hold (see :func:`binds`)."""

MACHINE_KINDS: frozenset[str] = frozenset({"workload", "agent"})
"""Non-human kinds: one class for the policy's per-kind lists and for novelty."""

_SPIFFE = "spiffe://"
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")  # SPIFFE: lower case, digits, '.', '-', '_'


def is_machine(kind: str) -> bool:
    """Whether ``kind`` is a workload or an agent."""
    return kind in MACHINE_KINDS


@cache  # a policy's tuple of kinds: a handful per process, asked on every request
def _with_machines(kinds: tuple[str, ...]) -> frozenset[str]:
    """``kinds``, with both machine kinds when either is listed."""
    listed = frozenset(kinds)
    return listed | MACHINE_KINDS if listed & MACHINE_KINDS else listed


def spiffe_trust_domain(uri: str | None) -> str | None:
    """The trust domain of a ``spiffe://`` URI (scheme in any case), ``""`` when it has no
    valid one, or ``None`` when ``uri`` is no SPIFFE URI."""
    if uri is None or uri[:len(_SPIFFE)].lower() != _SPIFFE:
        return None
    domain = uri[len(_SPIFFE):].split("/", 1)[0]
    return domain if _TRUST_DOMAIN.fullmatch(domain) else ""


def binds(findings: Iterable[Finding]) -> bool:
    """Whether no identity rule objects among ``findings`` (the kind may then be fixed)."""
    return not any(finding.rule in IDENTITY_RULES for finding in findings)


def check_kind_mismatch(ctx: RequestContext) -> tuple[Finding, ...]:
    """A SPIFFE id claiming (or defaulting to) ``human``."""
    subject = ctx.event.subject
    if subject.kind == "human" and spiffe_trust_domain(subject.id) is not None:
        return (Finding("deny", IDENTITY_KIND_MISMATCH, f"{subject.id} is a SPIFFE id: a SPIFFE "
                        "id names a workload or an agent, not a human; send kind \"workload\" "
                        "or \"agent\""),)
    return ()


def check_issuer(ctx: RequestContext) -> tuple[Finding, ...]:
    """The policy's issuers for the kind, and a SPIFFE id within its SPIFFE issuer's domain."""
    subject = ctx.event.subject
    found: tuple[Finding, ...] = ()
    issuers = ctx.tenant.identity.allowed_issuers.get(subject.kind)
    if issuers is not None and subject.issuer not in issuers:
        found = (Finding("deny", IDENTITY_ISSUER, f"{subject.kind} issuer {subject.issuer!r} is "
                         f"not allowed (allowed: {', '.join(issuers) or 'none'})"),)
    issued_by = spiffe_trust_domain(subject.issuer)
    domain = spiffe_trust_domain(subject.id)
    if issued_by is not None and domain is not None and (not domain or domain != issued_by):
        found += (Finding("deny", IDENTITY_ISSUER,
                          f"SPIFFE id {subject.id}: trust domain {domain or '(invalid)'} is "
                          f"not its issuer's ({issued_by or '(invalid)'})"),)
    return found


def check_kind_changed(ctx: RequestContext) -> tuple[Finding, ...]:
    """A request claiming a kind other than the one the subject's kind was fixed to."""
    state, claimed = ctx.held.state, ctx.event.subject.kind
    if state.kind_fixed and claimed != state.kind:
        return (Finding("deny", IDENTITY_KIND_CHANGED, f"{ctx.event.subject.id} is a "
                        f"{state.kind} (fixed by its first request); this request claims "
                        f"{claimed}"),)
    return ()


def check_attestation(ctx: RequestContext) -> tuple[Finding, ...]:
    subject = ctx.event.subject
    required = _with_machines(ctx.tenant.identity.require_attestation)
    if subject.kind in required and not subject.attested:
        return (Finding("deny", IDENTITY_ATTESTATION,
                        f"{subject.kind} identity is not attested"),)
    return ()


def check_owner(ctx: RequestContext) -> tuple[Finding, ...]:
    """A kind listed in ``identity.require_owner`` without a (non-blank) owner."""
    subject = ctx.event.subject
    required = _with_machines(ctx.tenant.identity.require_owner)
    if subject.kind in required and not (subject.owner and subject.owner.strip()):
        return (Finding("deny", IDENTITY_OWNER, f"{subject.kind} names no owner; the policy "
                        "requires subject.owner (the accountable team or person) for "
                        f"{', '.join(sorted(required))}"),)
    return ()
