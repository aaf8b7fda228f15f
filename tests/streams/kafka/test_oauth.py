"""Short-lived Kafka credentials (issue 23): the token provider against the stack's own OIDC
issuer (ops/oidc_issuer.py, run in a thread), a workload agent's token file, and the
fail-closed paths. No broker: tests/integration/test_oidc.py has those."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from schemas.errors import ConfigError
from streams.audit.keys import PasswordFile
from streams.kafka.oauth import MAX_REFUSALS, TokenProvider, describe_token
from streams.kafka.security import kafka_client_options
from streams.settings import KafkaSettings, load_settings
from tests.paths import REPO


def _issuer_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oidc_issuer", REPO / "ops" / "oidc_issuer.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


issuer_ops = _issuer_module()


class Issuer:
    def __init__(self, state: Path) -> None:
        self.state = state
        issuer_ops.main(["client", "--dir", str(state), "watcher"])
        issuer_ops.new_key(state)
        args = type("Args", (), {"host": "127.0.0.1", "port": 0, "dir": state, "issuer": None,
                                 "audience": "kafka", "extra_audience": ["other"], "ttl": 30.0,
                                 "publish_delay": 0.0})
        self.server = issuer_ops._Issuer(args)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.server.issuer = self.url
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        # The client's own copy: revoking at the issuer leaves it in place, as at an IdP.
        self.secret_file = state.parent / "watcher.client-secret"
        self.secret_file.write_text((state / "clients" / "watcher.secret").read_text())


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[Issuer]:
    running = Issuer(tmp_path / "issuer")
    yield running
    running.server.shutdown()
    running.server.server_close()


def _settings(issuer: Issuer | None = None, **extra: Any) -> KafkaSettings:
    oauth: dict[str, Any] = {}
    if issuer is not None:
        oauth = {"kafka_oauth_token_endpoint": f"{issuer.url}/token",
                 "kafka_oauth_client_id": "watcher",
                 "kafka_oauth_client_secret_file": issuer.secret_file}
    return load_settings(kafka_security_protocol="SASL_PLAINTEXT",
                         kafka_sasl_mechanism="OAUTHBEARER", **{**oauth, **extra}).kafka


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_client_credentials_token_is_cached_until_80_percent_of_its_life(
        issuer: Issuer) -> None:
    import time

    clock = Clock(time.time())
    provider = TokenProvider(_settings(issuer), clock=clock)
    first = await provider.token()
    info = provider.describe()
    assert info is not None
    assert (info.principal, info.issuer, info.audience) == ("watcher", issuer.url, "kafka")
    assert info.refresh_at == pytest.approx(info.issued_at + 0.8 * 30, abs=1)
    clock.now = info.refresh_at - 0.5
    assert await provider.token() == first  # reused: every connection shares one token
    clock.now = info.refresh_at + 0.1
    issuer_ops.time.sleep(1.1)  # a new iat, so a new token even within the same second
    assert await provider.token() != first


async def test_revoked_client_gets_no_new_token_and_the_error_names_the_settings(
        issuer: Issuer) -> None:
    provider = TokenProvider(_settings(issuer))
    token = await provider.token()
    issuer_ops.main(["revoke", "--dir", str(issuer.state), "watcher"])
    fresh = TokenProvider(_settings(issuer))
    with pytest.raises(ConfigError) as caught:
        await fresh.token()
    message = str(caught.value)
    assert "refused client 'watcher'" in message
    assert "JITWATCH_KAFKA_OAUTH_CLIENT_SECRET_FILE" in message
    assert token not in message
    assert token not in repr(provider)


async def test_unreachable_issuer_is_a_config_error_naming_the_endpoint() -> None:
    provider = TokenProvider(load_settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="OAUTHBEARER",
        kafka_oauth_token_endpoint="http://127.0.0.1:1/token",  # noqa: S106 - a URL
        kafka_oauth_client_id="x",
        kafka_oauth_client_secret_file=Path(__file__)).kafka)
    with pytest.raises(ConfigError, match=r"JITWATCH_KAFKA_OAUTH_TOKEN_ENDPOINT .* did not answer"):
        await provider.token()


async def test_token_file_is_read_again_when_due_and_an_expired_one_is_refused(
        issuer: Issuer, tmp_path: Path) -> None:
    path = tmp_path / "svid.jwt"
    mint = issuer_ops.mint
    path.write_text(mint(issuer.state, "watcher", issuer=issuer.url, audience="kafka", ttl=20))
    clock = Clock(issuer_ops.time.time())
    provider = TokenProvider(_settings(kafka_oauth_token_file=path), clock=clock)
    first = await provider.token()
    path.write_text(mint(issuer.state, "watcher", issuer=issuer.url, audience="kafka", ttl=40))
    assert await provider.token() == first  # not due yet: the agent's new file waits
    clock.now += 17
    second = await provider.token()
    assert second != first
    path.write_text(mint(issuer.state, "watcher", issuer=issuer.url, audience="kafka", ttl=-5))
    clock.now += 40
    with pytest.raises(ConfigError, match=r"JITWATCH_KAFKA_OAUTH_TOKEN_FILE .* expired"):
        await provider.token()


async def test_broker_refusals_drop_the_token_and_stop_after_a_few(issuer: Issuer) -> None:
    provider = TokenProvider(_settings(issuer))
    for _ in range(MAX_REFUSALS):
        token = await provider.token()
        reason = provider.refuse("invalid_token")
        assert "refused the token of 'watcher'" in reason
        assert "sasl.oauthbearer.expected.issuer" in reason
        assert token not in reason
        assert provider.describe() is None  # the next connection asks for a new one
    with pytest.raises(ConfigError, match="3 tokens refused in a row"):
        await provider.token()


def test_describe_token_needs_a_jwt_with_sub_and_exp() -> None:
    with pytest.raises(ConfigError, match="is not a JWT"):
        describe_token("secret-looking-garbage", "the file", 0.0)
    with pytest.raises(ConfigError) as caught:
        describe_token("a.b.c", "the file", 0.0)
    assert "secret" not in str(caught.value)


def test_settings_need_exactly_one_token_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one of"):
        _settings()
    with pytest.raises(ConfigError, match="needs JITWATCH_KAFKA_OAUTH_CLIENT_ID"):
        _settings(kafka_oauth_token_endpoint="http://127.0.0.1:1/token")  # noqa: S106 - a URL
    settings = _settings(kafka_oauth_token_file=tmp_path / "t")
    options = kafka_client_options(settings)
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert options["sasl_oauth_token_provider"] is kafka_client_options(settings)[
        "sasl_oauth_token_provider"]  # one provider per process and settings
    assert "sasl_plain_password" not in options


def test_redis_password_file_is_read_at_every_connect(tmp_path: Path) -> None:
    path = tmp_path / "sink.password"
    path.write_text("old\n")
    login = PasswordFile("jitwatch-sink", path, None)
    assert login.get_credentials() == ("jitwatch-sink", "old")
    path.write_text("new\n")  # ops/stack rotate-secrets replaced it
    assert login.get_credentials() == ("jitwatch-sink", "new")
    path.unlink()  # between unlink and rename: the last one read
    assert login.get_credentials() == ("jitwatch-sink", "new")
    assert "new" not in repr(login)
