"""The identity rules (policy/rules/identity.py); golden cases identity-* show each."""

from __future__ import annotations

import pytest

from policy.rules.identity import spiffe_trust_domain
from tests.policy.rules.support import brief, policy, req, run


def test_identity_issuer_and_attestation() -> None:
    active = policy('[defaults.identity]\nallowed_issuers = { workload = ["spiffe://a"] }\n')
    workload = {"id": "alice", "kind": "workload", "issuer": "spiffe://b", "attested": True}
    _, verdicts = run([req("r-1", ("db", "dev", "low"), subject="alice") | {"subject": workload},
                       req("r-2", ("db", "dev", "low"), t=1) | {"subject": {
                           **workload, "issuer": "spiffe://a", "attested": False}}], active)
    assert brief(verdicts) == [("deny", "identity-issuer", "r-1"),
                               ("deny", "identity-attestation", "r-2")]


@pytest.mark.parametrize(("uri", "domain"), [
    ("spiffe://acme.example/ns/ci/sa/deployer", "acme.example"),
    ("SPIFFE://acme.example/x", "acme.example"),
    ("spiffe://acme.example", "acme.example"),
    ("spiffe://acme.example/", "acme.example"),
    ("spiffe://ACME.example/x", ""),
    ("spiffe://user@acme.example/x", ""),
    ("spiffe:///x", ""),
    ("https://acme.example", None),
    ("agent://acme/copilot", None),
    (None, None),
])
def test_spiffe_trust_domain(uri: str | None, domain: str | None) -> None:
    assert spiffe_trust_domain(uri) == domain
