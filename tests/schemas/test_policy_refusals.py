"""Policy texts: the default file, the exact-text pin, and refusals naming the field.

Complements ``test_policy.py`` with tenant sections, type strictness and the hash's input.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from schemas.errors import JitwatchError, PolicyError
from schemas.policy import parse_policy

DEFAULT = resources.files("policy").joinpath("default.toml").read_text()
V = 'version = "1"\n'


def refusal(text: str) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "candidate.toml")
    return str(caught.value)


def test_default_policy_parses_to_the_documented_values() -> None:
    loaded = parse_policy(DEFAULT)
    defaults = loaded.policy.defaults
    assert loaded.policy.version == "2026-12-06.3"
    assert (defaults.caps.max_active_resources, defaults.caps.strategy) == (3, "revoke_oldest")
    assert [(group.name, group.envs, group.strategy) for group in defaults.exclusive] == [
        ("prod-vs-research", ("prod", "research"), "revoke_older")]
    assert (defaults.ttl.default_s, defaults.ttl.max_s, defaults.ttl.over_max) == (
        3600, 28800, "clamp")
    assert (defaults.locks.default_s, defaults.locks.request_lock_s) == (3600, 3600)
    # Issue H: it serves the tenants it names, each with the defaults, and no other.
    assert loaded.policy.for_tenant("default") == loaded.policy.for_tenant("acme") == defaults
    assert loaded.policy.for_tenant("any-tenant") is None


@pytest.mark.parametrize("text", [
    DEFAULT, DEFAULT.replace("\n", "\r\n"), DEFAULT + "# ünïcode comment\n", V])
def test_sha256_is_of_the_exact_utf8_text(text: str) -> None:
    assert parse_policy(text).ref.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_texts_that_parse_alike_still_pin_differently() -> None:
    same = [DEFAULT, DEFAULT + "\n", DEFAULT.replace("\n", "\r\n"),
            DEFAULT.replace("max_s = 28800 ", "max_s = 28_800")]
    loaded = [parse_policy(text) for text in same]
    assert all(item.policy == loaded[0].policy for item in loaded)
    assert len({item.ref.sha256 for item in loaded}) == len(same)
    assert {item.ref.version for item in loaded} == {"2026-12-06.3"}


@pytest.mark.parametrize(("text", "names"), [
    (V + "[defaults.ttl]\ndefault_s = 60\nmax_s = 59",
     ["defaults", "ttl.default_s (60) exceeds ttl.max_s (59)"]),
    (V + "[tenants.acme.ttl]\ndefault_s = 9000\nmax_s = 60",
     ["tenants.acme", "ttl.default_s (9000) exceeds ttl.max_s (60)"]),
    (V + "[[defaults.ttl.limits]]\ndefault_s = 90\nmax_s = 60",
     ["ttl.limits[0].default_s exceeds its max_s"]),
    (V + '[[defaults.exclusive]]\nname = "solo"\nenvs = ["prod"]',
     ["defaults.exclusive.0", "'solo' has fewer than two sides"]),
    (V + '[[tenants.acme.exclusive]]\nname = "solo"\nroles = ["admin"]',
     ["tenants.acme.exclusive.0", "fewer than two sides"]),
    (V + 'colour = "blue"', ["colour", "Extra inputs are not permitted", "spelling"]),
    (V + "[defaults.ttl]\nmax_seconds = 60", ["defaults.ttl.max_seconds", "spelling"]),
    (V + "[tenants.acme]\nbreak_glas = {}", ["tenants.acme.break_glas"]),
    (V + "[defaults.ttl]\nmax_s = 1.5", ["defaults.ttl.max_s", "(got 1.5)"]),
    (V + '[defaults.ttl]\nover_max = "truncate"', ["defaults.ttl.over_max", "'truncate'"]),
    (V + '[defaults]\nexclusive = "prod"', ["defaults.exclusive", "should be a list"]),
    (V + "[defaults.break_glass]\nenabled = []", ["defaults.break_glass.enabled"]),
    ("version = 3\n", ["version", "valid string"]),
    ('version = ""\n', ["version"]),
    ("", ["version", "Field required", "add it"]),
    (V + "[defaults.caps\n", ["not valid TOML", "line 2"]),
    (V + V, ["not valid TOML"]),
])
def test_invalid_policies_name_the_field(text: str, names: list[str]) -> None:
    message = refusal(text)
    assert message.startswith("candidate.toml: ")
    for name in names:
        assert name in message, message


def test_every_problem_is_listed() -> None:
    message = refusal(V + "[defaults.caps]\nmax_active_resources = 0\n"
                          "max_resources_per_request = -1\nstrategy = \"random\"")
    for name in ("max_active_resources", "max_resources_per_request", "strategy"):
        assert f"defaults.caps.{name}" in message
    assert message.count("\n  - ") == 3


def test_policy_errors_are_jitwatch_errors_with_the_cause_kept() -> None:
    with pytest.raises(JitwatchError) as caught:
        parse_policy(V + "[x", "p.toml")
    assert isinstance(caught.value, PolicyError)
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(("section", "line"), [
    ("caps", "max_active_resources = true"),
    ("caps", 'max_active_resources = "3"'),
    ("ttl", "default_s = true"),
    ("break_glass", 'enabled = "yes"'),
    ("break_glass", "enabled = 0"),
])
def test_wrong_types_are_refused_not_coerced(section: str, line: str) -> None:
    message = refusal(f"{V}[defaults.{section}]\n{line}")
    assert f"defaults.{section}.{line.split(' =')[0]}" in message


def test_a_union_is_one_line_and_a_misspelt_key_gets_a_suggestion() -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(V + '[defaults.step_up]\nfrom_sensitivity = "High"\n'
                     '[[defaults.time_windows]]\n', "candidate.toml")
    message = str(raised.value)
    assert "literal[" not in message
    assert ("defaults.step_up.from_sensitivity: Input should be 'low', 'medium', 'high' or "
            "'critical' or 'never' (got 'High')") in message
    assert "defaults.time_windows: Extra inputs are not permitted (got [{}]); did you mean " \
        "windows?" in message
