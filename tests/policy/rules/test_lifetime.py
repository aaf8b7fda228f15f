"""Rules ttl-max and ttl-expired's lifetime (policy/rules/lifetime.py)."""

from __future__ import annotations

from tests.factories import at, request, variant
from tests.policy.rules.support import brief as brief_raw
from tests.policy.rules.support import policy, req
from tests.policy.rules.support import run as run_raw
from tests.policy.support import (
    POLICY,
    run,
)


class TestLifetime:
    def test_default_ttl(self) -> None:
        state, [verdict] = run([request("r-1", [("a", "prod")], t=7)])
        default = POLICY.defaults.ttl.default_s
        assert verdict.expires_at == at(7 + default)
        assert verdict.reason == f"no rule objects; granted for {default} s"
        assert state.grants[0].expires_at == at(7 + default)
        assert state.grants[0].granted_at == at(7)

    def test_requested_ttl_is_used(self) -> None:
        _, [verdict] = run([request("r-1", [("a", "prod")], ttl_s=90, t=1)])
        assert verdict.expires_at == at(91)

    def test_ttl_exactly_at_the_maximum_is_not_clamped(self) -> None:
        max_s = POLICY.defaults.ttl.max_s
        _, [verdict] = run([request("r-1", [("a", "prod")], ttl_s=max_s)])
        assert verdict.expires_at == at(max_s)
        assert "clamped" not in verdict.reason

    def test_ttl_over_the_maximum_is_clamped(self) -> None:
        max_s = POLICY.defaults.ttl.max_s
        _, [verdict] = run([request("r-1", [("a", "prod")], ttl_s=max_s + 1)])
        assert verdict.action == "approve"
        assert verdict.expires_at == at(max_s)
        assert verdict.reason == (f"no rule objects; granted for {max_s} s (requested "
                                  f"{max_s + 1} s, clamped to the maximum)")

    def test_ttl_settings_come_from_the_policy(self) -> None:
        policy = variant(POLICY, ttl={"default_s": 120, "max_s": 300})
        _, verdicts = run([request("r-1", [("a", "prod")]),
                           request("r-2", [("b", "prod")], ttl_s=1000)], policy=policy)
        assert [v.expires_at for v in verdicts] == [at(120), at(300)]


def test_ttl_limits_and_deny_over_max() -> None:
    active = policy('[defaults.ttl]\ndefault_s = 600\nmax_s = 3600\nover_max = "deny"\n'
                    '[[defaults.ttl.limits]]\nsensitivity_from = "critical"\ndefault_s = 60\n'
                    "max_s = 300\n")
    _, verdicts = run_raw([req("r-1", ("db", "dev", "low")),
                       req("r-2", ("vault", "dev", "critical"), t=1, ticket="OPS-1"),
                       req("r-3", ("vault", "dev", "critical"), t=2, ttl_s=301,
                           ticket="OPS-1")], active)
    assert verdicts[0].expires_at == at(600)
    assert verdicts[1].action == "escalate", "critical steps up by default"
    assert brief_raw(verdicts)[2] == ("deny", "ttl-max", "r-3")
