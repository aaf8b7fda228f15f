"""Rules unknown-tenant and evaluation-error (policy/rules/failure.py)."""

from __future__ import annotations

from tests.policy.rules.support import brief, policy, req, run


def test_unknown_tenant_refused() -> None:
    active = policy('unknown_tenants = "deny"\n[tenants.acme.caps]\nmax_active_resources = 1\n')
    _, verdicts = run([req("r-1", ("db", "dev", "low"), tenant="initech")], active)
    assert brief(verdicts) == [("deny", "unknown-tenant", "r-1")]
