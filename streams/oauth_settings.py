"""The OAUTHBEARER part of the ``kafka`` settings section (issue 23), kept apart so
:mod:`streams.settings` stays short: a short-lived JWT instead of a password
(:mod:`streams.kafka.oauth`), from an OIDC token endpoint or from a file an agent refreshes.

Like :mod:`streams.settings`, imports nothing of jitwatch, so every module may use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

__all__ = ["OAuthFields"]


class OAuthFields(BaseModel):
    """``JITWATCH_KAFKA_OAUTH_*``: where an OAUTHBEARER client gets its tokens."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    kafka_oauth_token_endpoint: Annotated[str, StringConstraints(pattern=r"^https?://")] | None \
        = None
    """OAUTHBEARER: the OIDC token endpoint (client-credentials grant)."""
    kafka_oauth_client_id: str | None = None
    """OAUTHBEARER: the client id at the token endpoint (the token's ``sub``: the principal)."""
    kafka_oauth_client_secret_file: Path | None = None
    """OAUTHBEARER: a file holding the client secret, read at every token request."""
    kafka_oauth_scope: str | None = None
    """OAUTHBEARER: the ``scope`` asked of the token endpoint (the IdP's; often unset)."""
    kafka_oauth_audience: str | None = None
    """OAUTHBEARER: the ``audience`` asked of the token endpoint (unset: the IdP's default)."""
    kafka_oauth_token_file: Path | None = None
    """OAUTHBEARER: a JWT file a workload agent keeps fresh (SPIRE JWT-SVID), instead of
    the token endpoint."""

    def check_oauth(self) -> None:
        """OAUTHBEARER needs exactly one token source, complete (ValueError otherwise)."""
        endpoint = self.kafka_oauth_token_endpoint is not None
        if endpoint == (self.kafka_oauth_token_file is not None):
            raise ValueError("with kafka_sasl_mechanism OAUTHBEARER set exactly one of "
                             "JITWATCH_KAFKA_OAUTH_TOKEN_ENDPOINT (client credentials) or "
                             "JITWATCH_KAFKA_OAUTH_TOKEN_FILE (a workload agent's JWT)")
        if endpoint and not (self.kafka_oauth_client_id and self.kafka_oauth_client_secret_file):
            raise ValueError("JITWATCH_KAFKA_OAUTH_TOKEN_ENDPOINT needs "
                             "JITWATCH_KAFKA_OAUTH_CLIENT_ID and "
                             "JITWATCH_KAFKA_OAUTH_CLIENT_SECRET_FILE")
