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
    assert loaded.policy.defaults.caps.max_active_resources == 3
    assert loaded.policy.defaults.exclusive[0].envs == ("prod", "research")
    assert loaded.ref.version == loaded.policy.version
    assert loaded.ref.sha256 == hashlib.sha256(DEFAULT.encode()).hexdigest()
    assert parse_policy(DEFAULT + "\n").ref.sha256 != loaded.ref.sha256


V = 'version = "1"\n'


@pytest.mark.parametrize(("text", "names"), [
    (V + "[defaults.ttl]\ndefault_s = 9000\nmax_s = 60", ["default_s", "max_s"]),
    (V + '[[defaults.exclusive]]\nname = "x"\nenvs = ["prod"]', ["defaults.exclusive.0",
                                                              "fewer than two sides"]),
    (V + '[[defaults.exclusive]]\nname = "x"\nenvs = ["prod", "prod"]', ["two sides"]),
    (V + "[defaults.caps]\nmax_active_resourcez = 3", ["defaults.caps.max_active_resourcez",
                                                       "check its spelling"]),
    (V + '[defaults.caps]\nmax_active_resources = "three"', ["max_active_resources",
                                                             "'three'"]),
    (V + "[defaults.caps]\nmax_active_resources = 0", ["defaults.caps.max_active_resources"]),
    (V + "[defaults.locks]\nrequest_s = 0", ["defaults.locks.request_s"]),
    (V + '[[defaults.windows]]\ntimezone = "Mars/Olympus"', ["timezone", "IANA"]),
    (V + '[[defaults.windows]]\nstart = "18:00"\nend = "08:00"', ["not before end"]),
    (V + '[defaults.justification]\nticket_pattern = "(["', ["ticket_pattern",
                                                           "regular expression"]),
    (V + '[tenants.acme.caps]\nstrategy = "revoke_newest"', ["tenants.acme.caps.strategy"]),
    ("[defaults.caps]\nmax_active_resources = 3", ["version", "Field required"]),
    (V + '[tenants.ACME.caps]\nstrategy = "deny_new"', ["tenants.ACME", "pattern"]),
    (V + '[tenants."acme ".caps]\nstrategy = "deny_new"', ["tenants.acme ", "pattern"]),
    (V + "[defaults.caps]\nmax_active_resources = [", ["not valid TOML"]),
])
def test_invalid_policies_name_the_field(text: str, names: list[str]) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "candidate.toml")
    message = str(caught.value)
    assert message.startswith("candidate.toml:")
    for name in names:
        assert name in message


def test_tenants_inherit_and_replace_sections() -> None:
    policy = parse_policy(V + "unknown_tenants = \"deny\"\n[defaults.caps]\n"
                          "max_active_resources = 5\n[defaults.ttl]\ndefault_s = 60\n"
                          "[tenants.acme.ttl]\nmax_s = 120\ndefault_s = 30\n"
                          "[tenants.globex]\n").policy
    acme = policy.for_tenant("acme")
    assert acme is not None
    assert acme.caps.max_active_resources == 5, "inherited section"
    assert (acme.ttl.default_s, acme.ttl.max_s) == (30, 120), "replaced whole section"
    assert policy.for_tenant("globex") is not None
    assert policy.for_tenant("initech") is None, "unknown tenants refused"


def test_request_locks_last_request_s_else_the_lock_default() -> None:
    policy = parse_policy(V + "[defaults.locks]\ndefault_s = 600\n"
                          "[tenants.acme.locks]\ndefault_s = 900\nrequest_s = 120\n").policy
    assert policy.defaults.locks.request_lock_s == 600, "unset: locks.default_s"
    acme = policy.for_tenant("acme")
    assert acme is not None
    assert acme.locks.request_lock_s == 120
