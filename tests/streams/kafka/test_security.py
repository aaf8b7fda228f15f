"""Kafka SASL/TLS settings: secrets typed as secrets, read from files, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import ConfigError
from streams.kafka.security import kafka_client_options
from streams.settings import load_settings

SECRET = "s3cret-not-for-logs"  # noqa: S105 - a test value


def test_password_from_file_reaches_the_client_and_nothing_else(tmp_path: Path) -> None:
    secret_file = tmp_path / "watcher.password"
    secret_file.write_text(SECRET + "\n")
    settings = load_settings(kafka_security_protocol="SASL_PLAINTEXT",
                             kafka_sasl_username="watcher",
                             kafka_sasl_password_file=secret_file)
    options = kafka_client_options(settings)
    assert options["sasl_plain_password"] == SECRET
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert settings.kafka_principal == "User:watcher"
    assert SECRET not in repr(settings) + settings.model_dump_json()


def test_password_from_env_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JITWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("JITWATCH_KAFKA_SASL_USERNAME", "watcher")
    monkeypatch.setenv("JITWATCH_KAFKA_SASL_PASSWORD", SECRET)
    settings = load_settings()
    assert kafka_client_options(settings)["sasl_plain_password"] == SECRET
    assert SECRET not in repr(settings) + str(settings.model_dump())


def test_incomplete_or_unreadable_credentials_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JITWATCH_KAFKA_SASL_USERNAME"):
        load_settings(kafka_security_protocol="SASL_SSL")
    with pytest.raises(ConfigError, match="exactly one"):
        load_settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="w")
    settings = load_settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="w",
                             kafka_sasl_password_file=tmp_path / "missing")
    with pytest.raises(ConfigError, match="missing"):
        kafka_client_options(settings)
    with pytest.raises(ConfigError, match="go together"):
        load_settings(kafka_ssl_certfile=tmp_path / "cert.pem")


def test_plaintext_default_and_tls_context() -> None:
    assert kafka_client_options(load_settings()) == {"security_protocol": "PLAINTEXT"}
    options = kafka_client_options(load_settings(kafka_security_protocol="SSL"))
    assert options["ssl_context"] is not None
