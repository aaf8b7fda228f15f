"""Policy texts: the packaged default, its pin, and refusals that name the field."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from schemas.errors import PolicyError
from schemas.policy import parse_policy

DEFAULT = resources.files("policy").joinpath("default.toml").read_text()


def test_default_policy_parses_and_is_pinned_by_its_exact_text() -> None:
    loaded = parse_policy(DEFAULT)
    assert loaded.policy.max_active_resources == 3
    assert loaded.policy.exclusive_env_groups == (("prod", "research"),)
    assert loaded.ref.version == loaded.policy.version
    assert loaded.ref.sha256 == hashlib.sha256(DEFAULT.encode()).hexdigest()
    assert parse_policy(DEFAULT + "\n").ref.sha256 != loaded.ref.sha256


@pytest.mark.parametrize(("text", "names"), [
    ('version = "1"\ndefault_ttl_s = 9000\nmax_ttl_s = 60', ["default_ttl_s", "max_ttl_s"]),
    ('version = "1"\nexclusive_env_groups = [["prod"]]', ["exclusive_env_groups", "prod"]),
    ('version = "1"\nexclusive_env_groups = [["prod", "prod"]]', ["exclusive_env_groups"]),
    ('version = "1"\nmax_active_resourcez = 3', ["max_active_resourcez", "Extra inputs"]),
    ('version = "1"\nmax_active_resources = "three"', ["max_active_resources", "'three'"]),
    ('version = "1"\nmax_active_resources = 0', ["max_active_resources"]),
    ("max_active_resources = 3", ["version", "Field required"]),
    ('version = "1"\nmax_active_resources = [', ["not valid TOML"]),
])
def test_invalid_policies_name_the_field(text: str, names: list[str]) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "candidate.toml")
    message = str(caught.value)
    assert message.startswith("candidate.toml:")
    for name in names:
        assert name in message
