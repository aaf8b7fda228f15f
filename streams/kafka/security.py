"""How jitwatch's Kafka clients authenticate: SASL (SCRAM, PLAIN) and TLS options.

The fields are mixed into :class:`streams.settings.Settings` (``JITWATCH_KAFKA_*``). The
password is a :class:`~pydantic.SecretStr` from ``JITWATCH_KAFKA_SASL_PASSWORD`` or read from
``JITWATCH_KAFKA_SASL_PASSWORD_FILE`` when a client is built, so it never appears in a repr,
a log line or an error message. Every aiokafka client gets :func:`kafka_client_options`,
the faust app :func:`streams.worker.credentials.faust_credentials`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from schemas.errors import ConfigError

__all__ = ["KafkaSecurity", "kafka_client_options", "sasl_password", "ssl_context"]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaSecurity(BaseModel):
    """Kafka authentication and transport security (mixed into the settings)."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # descriptions for --help

    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    """``PLAINTEXT`` (default, local stack), ``SASL_PLAINTEXT``, ``SSL`` or ``SASL_SSL``."""
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    """With SASL: ``SCRAM-SHA-512``, ``SCRAM-SHA-256`` or ``PLAIN``."""
    kafka_sasl_username: str | None = None
    """The principal the client authenticates as (``User:<name>`` in ACLs)."""
    kafka_sasl_password: SecretStr | None = None
    """Prefer ``kafka_sasl_password_file``: environment variables leak into process dumps."""
    kafka_sasl_password_file: Path | None = None
    """A file holding the password (trailing newline ignored), e.g. a mounted secret."""
    kafka_ssl_cafile: Path | None = None
    """CA bundle that signed the brokers' certificates (system CAs when unset)."""
    kafka_ssl_certfile: Path | None = None
    """Client certificate for mutual TLS."""
    kafka_ssl_keyfile: Path | None = None
    """The client certificate's private key."""
    principals_file: Path = Path("ops/principals.toml")
    """The declarative principals and ACLs (``jitwatch acls apply``, ``jitwatch whoami``)."""

    @model_validator(mode="after")
    def _consistent_security(self) -> KafkaSecurity:
        if self.kafka_security_protocol.startswith("SASL_"):
            if not self.kafka_sasl_username:
                raise ValueError(
                    f"kafka_sasl_username is required with kafka_security_protocol "
                    f"{self.kafka_security_protocol}; set JITWATCH_KAFKA_SASL_USERNAME")
            if (self.kafka_sasl_password is None) == (self.kafka_sasl_password_file is None):
                raise ValueError(
                    "set exactly one of JITWATCH_KAFKA_SASL_PASSWORD_FILE (preferred) or "
                    "JITWATCH_KAFKA_SASL_PASSWORD")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile go together; set both "
                             "(JITWATCH_KAFKA_SSL_CERTFILE, JITWATCH_KAFKA_SSL_KEYFILE) or neither")
        return self

    @property
    def kafka_principal(self) -> str:
        """The principal as Kafka's authorizer names it."""
        if self.kafka_security_protocol.startswith("SASL_") and self.kafka_sasl_username:
            return f"User:{self.kafka_sasl_username}"
        return "User:ANONYMOUS"


def sasl_password(security: KafkaSecurity) -> str:
    """The SASL password, read from its file when one is configured.

    Raises:
        ConfigError: naming the file (never its content) when it cannot be read or is empty.
    """
    if security.kafka_sasl_password is not None:
        return security.kafka_sasl_password.get_secret_value()
    path = security.kafka_sasl_password_file
    if path is None:
        raise ConfigError("no SASL password configured; set JITWATCH_KAFKA_SASL_PASSWORD_FILE")
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read JITWATCH_KAFKA_SASL_PASSWORD_FILE {path}: "
                          f"{exc.strerror}") from exc
    if not password:
        raise ConfigError(f"JITWATCH_KAFKA_SASL_PASSWORD_FILE {path} is empty")
    return password


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """The TLS context of these settings; None without TLS.

    Raises:
        ConfigError: when the CA, certificate or key cannot be loaded.
    """
    if not security.kafka_security_protocol.endswith("SSL"):
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(security.kafka_ssl_cafile) if security.kafka_ssl_cafile else None)
        if security.kafka_ssl_certfile is not None and security.kafka_ssl_keyfile is not None:
            context.load_cert_chain(str(security.kafka_ssl_certfile),
                                    str(security.kafka_ssl_keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot set up TLS for Kafka (JITWATCH_KAFKA_SSL_*): {exc}") from exc
    return context


def kafka_client_options(security: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
    options: dict[str, Any] = {"security_protocol": security.kafka_security_protocol}
    context = ssl_context(security)
    if context is not None:
        options["ssl_context"] = context
    if security.kafka_security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = security.kafka_sasl_mechanism
        options["sasl_plain_username"] = security.kafka_sasl_username
        options["sasl_plain_password"] = sasl_password(security)
    return options
