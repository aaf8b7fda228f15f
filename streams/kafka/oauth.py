"""Short-lived Kafka credentials: SASL/OAUTHBEARER tokens (KIP-768), issue 23.

One :class:`TokenProvider` per process and settings (:func:`token_provider`) serves every
client of that process: the worker's faust app, the audit sink, the notary, the SIEM's
``audit verify`` and the tools. A token comes from

- an OIDC token endpoint with the client-credentials grant (``JITWATCH_KAFKA_OAUTH_TOKEN_
  ENDPOINT``, ``_CLIENT_ID``, ``_CLIENT_SECRET_FILE``, optional ``_SCOPE`` and ``_AUDIENCE``):
  Keycloak, Entra ID, Okta or the stack's local issuer; the secret file is read at every
  request, so a rotated secret needs no restart; or
- a file a workload agent keeps fresh (``JITWATCH_KAFKA_OAUTH_TOKEN_FILE``), e.g. SPIRE's
  JWT-SVID: read again whenever the token held is due for refresh.

A token is kept and handed to every new connection until 80 % of its life has passed, then
replaced. aiokafka does not re-authenticate a connection (KIP-368): the broker closes it
when its token expires (``connections.max.reauth.ms``) and aiokafka reconnects, asking for
a token again, which is then a fresh one. The token never appears in a log line, a repr or
an error; :meth:`TokenProvider.describe` tells ``whoami`` its principal, issuer and times.

The provider reads the token's claims only to schedule the refresh and to say who it is: it
verifies no signature (the broker does, against the issuer's JWKS).

Fail closed, and say so: aiokafka (0.14) takes the broker's OAUTHBEARER error challenge
(RFC 7628 3.2.2, ``{"status": "invalid_token"}``) for success and goes on with a connection
the broker never authenticated, so a refused token showed up as "unknown topic" errors.
:func:`install_refusal_check` makes such a challenge an ``AuthenticationFailedError`` that
names the token's principal, issuer and audience and the broker's settings to compare. A
refused token is dropped (the next connection asks for a new one, e.g. after a key
rotation); after :data:`MAX_REFUSALS` refusals in a row :meth:`TokenProvider.token` raises
:class:`ConfigError` with the broker's reason instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiokafka.abc import AbstractTokenProvider

from schemas.errors import ConfigError
from streams.settings import KafkaSettings

__all__ = ["MAX_REFUSALS", "REFRESH_AT", "TokenInfo", "TokenProvider", "describe_token",
           "install_refusal_check", "token_identity", "token_provider"]

log = logging.getLogger(__name__)

REFRESH_AT = 0.8
"""Share of a token's life after which it is replaced (the rest covers clock skew and a
slow issuer)."""
MAX_REFUSALS = 3
"""Tokens in a row the broker may refuse before the provider gives up with an error."""
_MIN_LEFT_S = 2.0
"""A token with less life left than this is never handed out (the broker would cut the
session before it did any work)."""


@dataclass(frozen=True)
class TokenInfo:
    """What may be said about a token: never the token itself."""

    principal: str
    issuer: str
    audience: str
    issued_at: float
    expires_at: float
    refresh_at: float
    source: str


def _claims(token: str, source: str) -> dict[str, Any]:
    """The payload of a JWS compact token, unverified; ConfigError when it is not one."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three dot-separated parts")
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        if not isinstance(payload, dict):
            raise ValueError("payload is not a JSON object")
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        # The message names the source only: a broken token may still hold a secret.
        raise ConfigError(f"the token from {source} is not a JWT ({exc.__class__.__name__})"
                          ) from None
    return payload


def describe_token(token: str, source: str, now: float) -> TokenInfo:
    """Principal (``sub``), issuer, audience and times of ``token`` (refresh at 80 %)."""
    claims = _claims(token, source)
    if not isinstance(claims.get("exp"), int | float) or not claims.get("sub"):
        raise ConfigError(f"the token from {source} has no exp or no sub claim: the broker "
                          "cannot bound its session or name its principal")
    expires = float(claims["exp"])
    issued = float(claims.get("iat") or now)
    audience = claims.get("aud", "")
    return TokenInfo(principal=str(claims["sub"]), issuer=str(claims.get("iss", "")),
                     audience=",".join(audience) if isinstance(audience, list) else str(audience),
                     issued_at=issued, expires_at=expires,
                     refresh_at=issued + REFRESH_AT * max(expires - issued, 0.0), source=source)


class TokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka's ``sasl_oauth_token_provider``: one cached token, refreshed at 80 % of life.

    Raises (from :meth:`token`) :class:`ConfigError` naming the cause and the setting when
    no usable token can be had: the issuer refused the client, the file is missing or holds
    an expired token. aiokafka then fails the connection, and jitwatch stops with that
    message instead of retrying forever.
    """

    def __init__(self, kafka: KafkaSettings, clock: Callable[[], float] = time.time) -> None:
        self._kafka = kafka
        self._clock = clock
        self._token: str | None = None
        self._info: TokenInfo | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self.refused: str | None = None
        """Why the broker refused the last token (None once one was accepted)."""
        self._refusals = 0

    def __repr__(self) -> str:
        return f"<TokenProvider {self.source} principal={self._info and self._info.principal}>"

    @property
    def source(self) -> str:
        """Where tokens come from (a file path or the token endpoint), for messages."""
        if self._kafka.kafka_oauth_token_file is not None:
            return f"JITWATCH_KAFKA_OAUTH_TOKEN_FILE {self._kafka.kafka_oauth_token_file}"
        return f"JITWATCH_KAFKA_OAUTH_TOKEN_ENDPOINT {self._kafka.kafka_oauth_token_endpoint}"

    def describe(self) -> TokenInfo | None:
        """The current token's principal, issuer and times; None before the first token."""
        return self._info

    def refuse(self, status: str) -> str:
        """The broker refused the token handed out last: forget it, say why (never the
        token), and count the refusal; :meth:`token` gives up after :data:`MAX_REFUSALS`."""
        info = self._info
        self._token, self._info = None, None
        self._refusals += 1
        about = "no token" if info is None else (
            f"the token of {info.principal!r} (iss {info.issuer!r}, aud {info.audience!r}, "
            f"expires {_utc(info.expires_at)})")
        self.refused = (
            f"the Kafka broker refused {about} from {self.source}: {status}. The broker "
            "accepts only tokens signed by a key in its JWKS (sasl.oauthbearer.jwks.endpoint."
            "url), not expired, with its sasl.oauthbearer.expected.issuer and .audience; "
            "compare them with the issuer's (JITWATCH_KAFKA_OAUTH_AUDIENCE asks for another)")
        return self.refused

    def accepted(self) -> None:
        """The broker took the token: the refusal count starts again."""
        self._refusals, self.refused = 0, None

    async def token(self) -> str:
        """A token with life left: the cached one before its refresh time, else a new one."""
        if self._refusals >= MAX_REFUSALS and self.refused is not None:
            raise ConfigError(f"{self.refused} ({self._refusals} tokens refused in a row; "
                              "giving up)")
        now = self._clock()
        if self._token is not None and self._info is not None and now < self._info.refresh_at:
            return self._token
        # One fetch at a time per event loop: a reconnect storm asks the issuer once.
        lock = self._locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
        async with lock:
            now = self._clock()
            if self._token is None or self._info is None or now >= self._info.refresh_at:
                token = await self._fetch()
                info = describe_token(token, self.source, now)
                if info.expires_at - now < _MIN_LEFT_S:
                    raise ConfigError(
                        f"the token from {self.source} expired at {_utc(info.expires_at)} "
                        f"(or has under {_MIN_LEFT_S:g} s left): the broker refuses it. Is the "
                        "workload agent that refreshes it running?")
                self._token, self._info = token, info
                log.info("Kafka token for %s from %s, expires %s, refresh at %s",
                         info.principal, self.source.split(" ", 1)[0], _utc(info.expires_at),
                         _utc(info.refresh_at))
            return self._token

    async def _fetch(self) -> str:
        if self._kafka.kafka_oauth_token_file is not None:
            return self._read_file()
        return await self._client_credentials()

    def _read_file(self) -> str:
        path = self._kafka.kafka_oauth_token_file
        assert path is not None
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {self.source}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"{self.source} is empty")
        return token

    async def _client_credentials(self) -> str:
        kafka = self._kafka
        url = kafka.kafka_oauth_token_endpoint
        secret_file = kafka.kafka_oauth_client_secret_file
        assert url is not None
        assert secret_file is not None
        assert kafka.kafka_oauth_client_id
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read JITWATCH_KAFKA_OAUTH_CLIENT_SECRET_FILE "
                              f"{secret_file}: {exc.strerror}") from None
        form = {"grant_type": "client_credentials", "client_id": kafka.kafka_oauth_client_id,
                "client_secret": secret}
        if kafka.kafka_oauth_scope:
            form["scope"] = kafka.kafka_oauth_scope
        if kafka.kafka_oauth_audience:
            form["audience"] = kafka.kafka_oauth_audience
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http, \
                    http.post(str(url), data=form) as reply:
                body = await reply.read()
                status = reply.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ConfigError(f"the OIDC token endpoint {self.source} did not answer "
                              f"({exc.__class__.__name__}: {exc})") from None
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = {}
        if status != 200 or not isinstance(answer, dict) or "access_token" not in answer:
            error = answer.get("error", "") if isinstance(answer, dict) else ""
            detail = answer.get("error_description", "") if isinstance(answer, dict) else ""
            raise ConfigError(
                f"the OIDC issuer refused client {kafka.kafka_oauth_client_id!r} (HTTP {status}"
                f"{', ' + str(error) if error else ''}{': ' + str(detail) if detail else ''}) "
                f"at {self.source}; check JITWATCH_KAFKA_OAUTH_CLIENT_ID and "
                "JITWATCH_KAFKA_OAUTH_CLIENT_SECRET_FILE (revoked at the issuer?)")
        return str(answer["access_token"])


async def token_identity(kafka: KafkaSettings) -> dict[str, Any]:
    """What ``whoami`` shows of the process's token: principal, issuer, audience, expiry and
    next refresh (UTC), its source, and the broker's refusal if any; never the token."""
    provider = token_provider(kafka)
    try:
        await provider.token()
    except ConfigError as exc:
        return {"source": provider.source, "error": str(exc)}
    info = provider.describe()
    assert info is not None
    return {"principal": f"User:{info.principal}", "issuer": info.issuer,
            "audience": info.audience, "expires": _utc(info.expires_at),
            "refresh_at": _utc(info.refresh_at), "source": provider.source,
            "refused": provider.refused}


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


@functools.cache
def token_provider(kafka: KafkaSettings) -> TokenProvider:
    """The process's one provider for these settings: every client shares its token."""
    install_refusal_check()
    return TokenProvider(kafka)


def _challenge_status(payload: bytes) -> str:
    try:
        challenge = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return "refused (an error challenge that is not JSON)"
    if isinstance(challenge, dict):
        return str(challenge.get("status") or "refused")
    return "refused"


@functools.cache
def install_refusal_check() -> None:
    """Make aiokafka's OAUTHBEARER step fail on the broker's error challenge (see the module
    docstring), telling the provider; installed once, by the first :func:`token_provider`."""
    from aiokafka import conn
    from aiokafka.errors import AuthenticationFailedError

    original = conn.OAuthAuthenticator.step

    async def step(self: Any, payload: bytes | None) -> Any:
        provider = self._sasl_oauth_token_provider
        if not self._token_sent:
            return await original(self, payload)
        if payload:  # an error challenge: the broker did not take the token
            reason = _challenge_status(payload)
            if isinstance(provider, TokenProvider):
                reason = provider.refuse(reason)
            log.error("%s", reason)
            raise AuthenticationFailedError(reason)
        if isinstance(provider, TokenProvider):
            provider.accepted()
        return None

    conn.OAuthAuthenticator.step = step
