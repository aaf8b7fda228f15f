"""How jitwatch's Kafka clients authenticate: SASL (SCRAM, PLAIN, OAUTHBEARER) and TLS.

The settings are the ``kafka`` section (:class:`streams.settings.KafkaSettings`,
``JITWATCH_KAFKA_*``). The password is a :class:`~pydantic.SecretStr` from
``JITWATCH_KAFKA_SASL_PASSWORD`` or read from ``JITWATCH_KAFKA_SASL_PASSWORD_FILE`` when a
client is built, so it never appears in a repr, a log line or an error message. Every
aiokafka client gets :func:`kafka_client_options`, the faust app
:func:`streams.worker.credentials.faust_credentials`. With ``OAUTHBEARER`` both take the
process's one token provider (:func:`streams.kafka.oauth.token_provider`): short-lived
tokens instead of a password (issue 23).
"""

from __future__ import annotations

import ssl
from typing import Any

from schemas.errors import ConfigError
from streams.settings import KafkaSettings

__all__ = ["kafka_client_options", "sasl_password", "ssl_context"]

def sasl_password(security: KafkaSettings) -> str:
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


def ssl_context(security: KafkaSettings) -> ssl.SSLContext | None:
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


def kafka_client_options(security: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
    options: dict[str, Any] = {"security_protocol": security.kafka_security_protocol}
    context = ssl_context(security)
    if context is not None:
        options["ssl_context"] = context
    if security.kafka_security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = security.kafka_sasl_mechanism
        if security.kafka_sasl_mechanism == "OAUTHBEARER":
            from streams.kafka.oauth import token_provider

            options["sasl_oauth_token_provider"] = token_provider(security)
            return options
        options["sasl_plain_username"] = security.kafka_sasl_username
        options["sasl_plain_password"] = sasl_password(security)
    return options
