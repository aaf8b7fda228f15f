"""The faust app's Kafka credentials, from the same settings as every aiokafka client."""

from __future__ import annotations

from typing import Any

import faust

from streams.kafka.oauth import token_provider
from streams.kafka.security import sasl_password, ssl_context
from streams.settings import KafkaSettings

__all__ = ["faust_credentials"]


def faust_credentials(security: KafkaSettings) -> Any:
    """The faust ``broker_credentials`` for these settings; None for plaintext."""
    context = ssl_context(security)
    if security.kafka_security_protocol.startswith("SASL_") and \
            security.kafka_sasl_mechanism == "OAUTHBEARER":
        # The same provider as the process's other clients: one token, refreshed at 80 %.
        return faust.OAuthCredentials(oauth_cb=token_provider(security), ssl_context=context)
    if security.kafka_security_protocol.startswith("SASL_"):
        return faust.SASLCredentials(username=security.kafka_sasl_username,
                                     password=sasl_password(security),
                                     mechanism=security.kafka_sasl_mechanism,
                                     ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None
