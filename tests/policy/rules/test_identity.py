"""Rules identity-issuer and identity-attestation (policy/rules/identity.py)."""

from __future__ import annotations

from tests.policy.rules.support import brief, policy, req, run


def test_identity_issuer_and_attestation() -> None:
    active = policy('[defaults.identity]\nallowed_issuers = { workload = ["spiffe://a"] }\n')
    workload = {"id": "alice", "kind": "workload", "issuer": "spiffe://b", "attested": True}
    _, verdicts = run([req("r-1", ("db", "dev", "low"), subject="alice") | {"subject": workload},
                       req("r-2", ("db", "dev", "low"), t=1) | {"subject": {
                           **workload, "issuer": "spiffe://a", "attested": False}}], active)
    assert brief(verdicts) == [("deny", "identity-issuer", "r-1"),
                               ("deny", "identity-attestation", "r-2")]
