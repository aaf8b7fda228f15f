"""Policy lint: what can never fire or contradicts itself is reported with the fix."""

from __future__ import annotations

from importlib import resources

import pytest

from policy.lint import describe, lint
from schemas.errors import PolicyError
from schemas.policy import parse_policy

DEFAULT = resources.files("policy").joinpath("default.toml").read_text()


def findings(text: str) -> dict[str, str]:
    return {f.where: f"{f.level}: {f.message}" for f in lint(parse_policy(text).policy)}


def test_packaged_policy_only_warns_about_site_specific_settings() -> None:
    assert set(findings(DEFAULT)) == {"defaults.identity.allowed_issuers",
                                      "defaults.step_up.reviewers",
}


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


LAX = '''version = "lax"
unknown_tenants = "defaults"
[defaults.identity]
allowed_issuers = { human = ["https://login.example.com"] }
require_attestation = []
[defaults.ttl]
default_s = 3600
max_s = 31536000
[[defaults.ttl.limits]]
env = "prod"
default_s = 3600
max_s = 172800
[defaults.step_up]
from_sensitivity = "never"
[[defaults.step_up.reviewers]]
ids = ["alice@example.com", "bob@example.com"]
[[defaults.step_up.reviewer_keys]]
reviewer = "alice@example.com"
key_id = "alice-1"
public_key = "VtZp/Yq+rYT6nefufDtfO+//jgYYqkoExXM0Nw0+Hvs="
[defaults.break_glass]
ttl_s = 900
max_per_window = 1000000
window_s = 1
'''


def test_guard_rails_name_the_field_and_the_fix() -> None:
    # Issue H, finding 14: `policy check --strict` passed all of these.
    found = findings(LAX)
    assert "31536000 s" in found["defaults.ttl.max_s"]
    assert "24 h" in found["defaults.ttl.max_s"]
    assert "172800 s" in found["defaults.ttl.limits[0].max_s"]
    assert "step-up is off" in found["defaults.step_up.from_sensitivity"]
    assert "neither workload nor agent" in found["defaults.identity.require_attestation"]
    assert "at most 3 per" in found["defaults.break_glass.max_per_window"]
    assert "bob@example.com" in found["defaults.step_up.reviewer_keys"]
    assert "alice@example.com" not in found["defaults.step_up.reviewer_keys"]
    assert "unknown tenants get [defaults]" in found["unknown_tenants"]
    assert all(line.startswith("warning: ") for line in found.values())


@pytest.mark.parametrize(("maximum", "window", "warned"), [
    (1, 86400, False), (3, 86400, False), (4, 86400, True), (1, 28800, False),
    (1, 28799, True), (1, 3599, True), (2, 7 * 86400, False), (10, 30 * 86400, True),
])
def test_break_glass_ration_is_tight(maximum: int, window: int, warned: bool) -> None:
    text = (f'version = "1"\n[defaults.break_glass]\nmax_per_window = {maximum}\n'
            f'window_s = {window}\n')
    assert ("defaults.break_glass.max_per_window" in findings(text)) is warned


def test_off_break_glass_needs_no_ration() -> None:
    text = 'version = "1"\n[defaults.break_glass]\nenabled = false\nmax_per_window = 99\n'
    assert "defaults.break_glass.max_per_window" not in findings(text)


def test_a_tenant_section_like_defaults_is_reported_once() -> None:
    found = findings('version = "1"\nunknown_tenants = "deny"\n[tenants.acme]\n'
                     '[tenants.beta.step_up]\nfrom_sensitivity = "never"\n')
    assert "defaults.identity.allowed_issuers" in found
    assert not [where for where in found if where.startswith("tenants.acme.")]
    assert "tenants.beta.step_up.from_sensitivity" in found


def test_an_empty_catalog_that_trusts_claims_is_a_guard_rail_off() -> None:
    found = findings('version = "1"\n[defaults.catalog]\nunknown = "claim"\n')
    assert "requesters' claims decide" in found["defaults.catalog"]
    assert "defaults.catalog" not in findings(
        'version = "1"\n[defaults.catalog]\nunknown = "escalate"\n')


@pytest.mark.parametrize(("section", "line", "where"), [
    ("time", "max_skew_s = 7200", "time.max_skew_s"),
    ("locks", "default_s = 1", "locks.default_s"),
    ("locks", "request_s = 10", "locks.request_s"),
    ("break_glass", "lock_s = 1", "break_glass.lock_s"),
    ("baseline", "lock_s = 1", "baseline.lock_s"),
    ("step_up", "pending_ttl_s = 31536000", "step_up.pending_ttl_s"),
    ("sessions", "grace_s = 3600", "sessions.grace_s"),
    ("baseline", "max_requests = 10000\nwindow_s = 1", "baseline.max_requests"),
])
def test_timings_that_switch_a_guard_off_are_warned(section: str, line: str,
                                                    where: str) -> None:
    found = findings(f'version = "1"\n[defaults.{section}]\n{line}\n')
    assert f"defaults.{where}" in found, sorted(found)
    assert "set it to" in found[f"defaults.{where}"] or "allow fewer" in found[
        f"defaults.{where}"]


def test_a_skew_of_more_than_a_day_is_invalid() -> None:
    with pytest.raises(PolicyError, match="max_skew_s"):
        parse_policy('version = "1"\n[defaults.time]\nmax_skew_s = 31536000\n')
