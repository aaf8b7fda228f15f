"""Policy lint: what can never fire or contradicts itself is reported with the fix."""

from __future__ import annotations

from importlib import resources

from policy.lint import describe, lint
from schemas.policy import parse_policy

DEFAULT = resources.files("policy").joinpath("default.toml").read_text()


def findings(text: str) -> dict[str, str]:
    return {f.where: f"{f.level}: {f.message}" for f in lint(parse_policy(text).policy)}


def test_packaged_policy_only_warns_about_site_specific_settings() -> None:
    assert set(findings(DEFAULT)) == {"defaults.identity.allowed_issuers",
                                      "defaults.step_up.reviewers"}


def test_rules_that_can_never_fire() -> None:
    found = findings('version = "1"\n[defaults.caps]\nmax_resources_per_request = 9\n'
                     '[defaults.ttl]\ndefault_s = 60\nmax_s = 600\n'
                     '[[defaults.ttl.limits]]\nenv = "prod"\ndefault_s = 600\nmax_s = 600\n'
                     '[[defaults.windows]]\ndays = []\n')
    assert "caps-per-request can never fire" in found["defaults.caps.max_resources_per_request"]
    assert "never change a lifetime" in found["defaults.ttl.limits[0]"]
    assert "every covered request falls outside" in found["defaults.windows[0].days"]
    assert "clamped" in found["defaults.break_glass.ttl_s"]


def test_contradictions_and_dead_ends() -> None:
    found = findings('version = "1"\nunknown_tenants = "deny"\n'
                     '[[defaults.exclusive]]\nname = "a"\nenvs = ["prod", "research"]\n'
                     '[[defaults.exclusive]]\nname = "b"\nenvs = ["prod", "dev"]\n'
                     '[defaults.justification]\nreason_from = "high"\nticket_from = "low"\n')
    assert found["unknown_tenants"].startswith("error: ")
    assert "also a side of a" in found["defaults.exclusive.b"]
    assert "ticket_from" in next(key for key in found if key.endswith("ticket_from"))
    assert "no reviewer may approve" in found["defaults.step_up.reviewers"]


def test_describe_names_every_section() -> None:
    lines = describe(parse_policy('version = "1"\nunknown_tenants = "deny"\n'
                                  '[tenants.acme.caps]\nmax_active_resources = 7\n').policy)
    assert lines[0].startswith("defaults: cap 3 resources")
    assert lines[1].startswith("tenant acme: cap 7 resources")
    assert lines[-1] == "other tenants: denied"
