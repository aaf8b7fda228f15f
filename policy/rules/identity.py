"""Who may ask at all: the identity's issuer and, for machines, its attestation."""

from __future__ import annotations

from policy.rules.base import Finding, RequestContext, Rule

__all__ = ["IDENTITY_ATTESTATION", "IDENTITY_ISSUER", "check_attestation", "check_issuer"]

IDENTITY_ISSUER = Rule("identity-issuer", "A subject's identity must come from an issuer the "
                       "policy allows for its kind.")
IDENTITY_ATTESTATION = Rule("identity-attestation", "Workloads and agents must present a "
                            "cryptographically attested identity.")


def check_issuer(ctx: RequestContext) -> tuple[Finding, ...]:
    subject = ctx.event.subject
    issuers = ctx.tenant.identity.allowed_issuers.get(subject.kind)
    if issuers is not None and subject.issuer not in issuers:
        return (Finding("deny", IDENTITY_ISSUER, f"{subject.kind} issuer {subject.issuer!r} is "
                        f"not allowed (allowed: {', '.join(issuers) or 'none'})"),)
    return ()


def check_attestation(ctx: RequestContext) -> tuple[Finding, ...]:
    subject = ctx.event.subject
    if subject.kind in ctx.tenant.identity.require_attestation and not subject.attested:
        return (Finding("deny", IDENTITY_ATTESTATION,
                        f"{subject.kind} identity is not attested"),)
    return ()
