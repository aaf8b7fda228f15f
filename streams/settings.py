"""Runtime settings, read once in ``main`` from ``JITWATCH_*`` environment variables, in
sections: each part of the code takes the section it needs, never the whole object.

Imports nothing of jitwatch but schemas' errors, so every other module may import its
section from here.
"""

from __future__ import annotations

import re
import textwrap
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import ConfigError
from schemas.state import MAX_STORED_BYTES
from streams.oauth_settings import OAuthFields

__all__ = [
    "ENVIRONMENT_GROUPS",
    "AuditSettings",
    "KafkaSettings",
    "PolicySettings",
    "Settings",
    "TopicSettings",
    "WebSettings",
    "WorkerSettings",
    "environment_help",
    "load_settings",
]

TopicName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "OAUTHBEARER"]


class _Section(BaseModel):
    # Attribute docstrings become field descriptions: `--help` lists them (environment_help).
    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)


class KafkaSettings(_Section, OAuthFields):
    """Section ``kafka``: where the brokers are and how every client authenticates
    (``JITWATCH_KAFKA_*``; :mod:`streams.kafka.security` turns it into client options; the
    OAUTHBEARER token source, issue 23, is :class:`streams.oauth_settings.OAuthFields`)."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    """Kafka bootstrap servers, ``host:port[,host:port]``."""
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    """``PLAINTEXT`` (default, local stack), ``SASL_PLAINTEXT``, ``SSL`` or ``SASL_SSL``."""
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    """With SASL: ``SCRAM-SHA-512``, ``SCRAM-SHA-256``, ``PLAIN`` or ``OAUTHBEARER``."""
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
    def _consistent_security(self) -> KafkaSettings:
        if self.kafka_security_protocol.startswith("SASL_") and \
                self.kafka_sasl_mechanism == "OAUTHBEARER":
            self.check_oauth()
        elif self.kafka_security_protocol.startswith("SASL_"):
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
        """The principal as Kafka's authorizer names it (with OAUTHBEARER the token's
        ``sub``: the client id, or ``?`` until a token from the file was read)."""
        if self.kafka_security_protocol.startswith("SASL_") and \
                self.kafka_sasl_mechanism == "OAUTHBEARER":
            return f"User:{self.kafka_oauth_client_id or '?'}"
        if self.kafka_security_protocol.startswith("SASL_") and self.kafka_sasl_username:
            return f"User:{self.kafka_sasl_username}"
        return "User:ANONYMOUS"


class TopicSettings(_Section):
    """Section ``topics``: the names and shape of every topic jitwatch reads or writes."""

    app_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")] = "jitwatch"
    """Consumer group of the workers and prefix of their changelog topics."""
    topic_requests: TopicName = "jit.requests"
    """Input topic of access requests and reviews."""
    topic_sessions: TopicName = "jit.sessions"
    """Input topic of session events."""
    topic_decisions: TopicName = "jit.decisions"
    """Output topic of every verdict (and of the worker's policy-load records)."""
    topic_deadletter: TopicName = "jit.deadletter"
    """Where inputs that cannot be decided go, with headers saying why."""
    topic_notices: TopicName = "jit.notices"
    """Output topic of notices (issue J: expiry soon, post-review due or overdue); never
    verdicts, so revocation workers need not read it."""
    topic_audit_checkpoints: TopicName = "jit.audit.checkpoints"
    """The notary's checkpoints, anchored outside Redis (issue I): kept without a time
    limit, written only by the notary's principal."""
    topic_decisions_ocsf: TopicName = "jit.decisions.ocsf"
    """Every verdict as an OCSF event, written by ``jitwatch siem`` (issue K) for SIEMs."""
    topic_partitions: int = Field(default=8, ge=1, le=10_000)
    """Partitions of every topic; inputs and changelogs must all have this many."""
    topic_replication: int = Field(default=1, ge=1, le=7)
    """Replication factor of the topics jitwatch creates."""

    @property
    def siem_group(self) -> str:
        """The consumer group of ``jitwatch siem``: its own, so its progress on the
        decisions topic is neither the audit sink's nor any SIEM's."""
        return f"{self.app_id}-siem"

    @property
    def topic_commands(self) -> str:
        """The watcher's own command topic (expiry ticks), co-partitioned with the inputs."""
        return f"{self.app_id}-commands"

    @property
    def topic_repartition(self) -> str:
        """The worker's own repartition topic: input records that landed on another
        partition than their subject's are forwarded through it to that partition (issue H;
        :mod:`streams.engine.repartition`). Co-partitioned with the inputs; only the worker
        writes it (the ``<app_id>-`` prefix of ops/principals.toml)."""
        return f"{self.app_id}-repartition"

    @property
    def topic_policy(self) -> str:
        """The policy last put in force by any worker of this app (issue H, rollback
        protection across data dirs): one partition, compacted, written and read only by
        the worker (:mod:`streams.control.rollback`)."""
        return f"{self.app_id}-policy"


class WorkerSettings(_Section):
    """Section ``worker``: the faust worker's store, batches, expiry timer and group."""

    data_dir: Path = Path(".jitwatch-data")
    """Where the worker keeps its RocksDB tables (rebuilt from changelogs when lost)."""
    store: str = "rocksdb://"
    """faust table store URL: ``rocksdb://`` in production, ``memory://`` for experiments."""
    standby_replicas: int = Field(default=1, ge=0, le=5)
    """Standby copies of each table partition other workers keep, for fast failover."""
    batch_max: int = Field(default=500, ge=1, le=100_000)
    """Most events decided in one batch."""
    producer_linger_ms: int = Field(default=2, ge=0, le=1000)
    """How long the producer gathers records per request: far fewer requests under load."""
    max_event_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Inputs larger than this go to the dead letter topic."""
    max_stored_bytes: int = Field(default=MAX_STORED_BYTES, ge=64 * 1024, le=64 * 1024 * 1024)
    """Largest subject state stored, else state-limit; records up to it plus the key's
    headroom (``STORED_RECORD_HEADROOM``) are sent, and a new changelog topic takes them."""
    expiry_check_s: float = Field(default=0.2, gt=0, le=60)
    """How often the expiry timer looks for deadlines that passed."""
    expiry_grace_s: float = Field(default=0.5, ge=0, le=60)
    """How long past a deadline the timer waits, so earlier events are decided first."""
    session_timeout_s: float = Field(default=10.0, ge=3, le=300)
    """How soon the group notices a worker that died without leaving (kill -9)."""
    batch_handoff: bool = True
    """Hand over, decide and ack each fetched batch whole, and send by aiokafka batches
    (issue M: patches/handoff.py, send.py); off: faust's per-record path (half the speed)."""


class PolicySettings(_Section):
    """Section ``policy``: which policy file, who may sign it, how often it is re-read."""

    policy_file: Path | None = None
    """Policy TOML; the packaged default policy when unset."""
    policy_signers_file: Path | None = None
    """Trusted policy signers (TOML); when set, only policies signed by one of them load."""
    policy_poll_s: float = Field(default=5.0, gt=0, le=3600)
    """How often the worker looks for a changed policy file (or its signature)."""


class AuditSettings(_Section):
    """Section ``audit``: the audit trail in Redis, its ACL users and the notary's keys."""

    redis_url: Annotated[str, StringConstraints(pattern=r"^(redis|rediss|unix)://")] = \
        "redis://127.0.0.1:6379/0"
    """Redis for the audit trail: ``redis://host:port/db`` (``rediss://`` with TLS)."""
    audit_group: Annotated[str, StringConstraints(min_length=1)] = "jitwatch-audit"
    """Consumer group of the audit sink (apart from the workers')."""
    audit_key_prefix: Annotated[str, StringConstraints(min_length=1)] = "jitwatch:audit"
    """Prefix of the audit trail's Redis keys (chains, checkpoints, index)."""
    # Issue D: Redis ACL users per role and the notary's keys. A password comes from
    # JITWATCH_<ROLE>_PASSWORD or, better, a file named by JITWATCH_<ROLE>_PASSWORD_FILE;
    # SecretStr keeps it out of reprs and logs. No user: the URL's (or Redis' default) user.
    redis_user: str | None = None
    """ACL user of the audit sink (appends chains and indexes)."""
    redis_password: SecretStr | None = None
    redis_password_file: Path | None = None
    """A file holding the sink's password (better than ``JITWATCH_REDIS_PASSWORD``)."""
    notary_redis_user: str | None = None
    """ACL user of the notary (reads chains, appends checkpoints)."""
    notary_redis_password: SecretStr | None = None
    notary_redis_password_file: Path | None = None
    """A file holding the notary's password (or ``JITWATCH_NOTARY_REDIS_PASSWORD``)."""
    verifier_redis_user: str | None = None
    """Read-only ACL user of ``jitwatch audit verify/query/export``."""
    verifier_redis_password: SecretStr | None = None
    verifier_redis_password_file: Path | None = None
    """A file holding the verifier's password (or ``JITWATCH_VERIFIER_REDIS_PASSWORD``)."""
    audit_signing_key_file: Path | None = None
    """The notary's Ed25519 private key (PEM, mode 0600; ``jitwatch audit keygen``)."""
    audit_verify_key_file: Path | None = None
    """The notary's public key (PEM), for ``jitwatch audit verify``."""
    audit_checkpoint_every: int = Field(default=10_000, ge=1)
    """The notary signs a chain's head once it grew by this many entries …"""
    audit_checkpoint_interval_s: float = Field(default=10.0, gt=0, le=86_400)
    """… or when this many seconds passed since its last checkpoint and it grew at all."""

    @model_validator(mode="before")
    @classmethod
    def _read_password_files(cls, data: object) -> object:
        """Fill each ``*_password`` from its ``*_password_file`` when only the file is set."""
        if not isinstance(data, dict):
            return data
        data = dict(data)  # the caller's mapping stays as given
        lowered = {str(name).lower(): name for name in data}
        for role in ("redis", "notary_redis", "verifier_redis"):
            path = data.get(lowered.get(f"{role}_password_file", ""))
            if path and not data.get(lowered.get(f"{role}_password", "")):
                try:
                    data[f"{role}_password"] = Path(path).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    # ConfigError passes through pydantic unwrapped, with our message.
                    raise ConfigError(f"JITWATCH_{role.upper()}_PASSWORD_FILE: cannot read "
                                      f"{path}: {exc.strerror}") from exc
        return data


class WebSettings(_Section):
    """Section ``web``: where each process serves ``/metrics``, ``/livez`` and ``/readyz``
    (issue K; :mod:`streams.observe.web`)."""

    web_host: str = "127.0.0.1"
    """Address the three processes bind their metrics and probes to: loopback unless told
    otherwise (``0.0.0.0`` for a scraper on another host; the endpoints have no login)."""
    web_port: int = Field(default=6066, ge=0, le=65535)
    """The worker's port (0: a free port, logged at start)."""
    audit_web_port: int = Field(default=6067, ge=0, le=65535)
    """The audit sink's port (0: a free port, logged at start)."""
    notary_web_port: int = Field(default=6068, ge=0, le=65535)
    """The notary's port (0: a free port, logged at start)."""


_S = TypeVar("_S", bound=BaseModel)


class Settings(KafkaSettings, TopicSettings, WorkerSettings, PolicySettings, AuditSettings,
               WebSettings, BaseSettings):
    """Every knob of jitwatch, read once from ``JITWATCH_*``; frozen once built.

    Each part of the code takes only its section (:attr:`kafka`, :attr:`topics`,
    :attr:`worker`, :attr:`policy`, :attr:`audit`, :attr:`web`); ``main`` builds the one
    object and the commands hand the sections on. The fields are also kept flat on the
    object itself, under the names of their environment variables: streams/audit reads them
    so (until it takes its section too), and ``--help`` lists them from here.
    """

    model_config = SettingsConfigDict(env_prefix="JITWATCH_", frozen=True, extra="ignore",
                                      use_attribute_docstrings=True)

    log_level: str = "info"
    """``debug``, ``info``, ``warning`` or ``error``."""

    def _section(self, kind: type[_S]) -> _S:
        # Already validated as a whole: the section takes the values as they are.
        return kind.model_construct(**{name: getattr(self, name) for name in kind.model_fields})

    @cached_property
    def kafka(self) -> KafkaSettings:
        """Brokers and client security."""
        return self._section(KafkaSettings)

    @cached_property
    def topics(self) -> TopicSettings:
        """Topic names, partitions and replication."""
        return self._section(TopicSettings)

    @cached_property
    def worker(self) -> WorkerSettings:
        """The faust worker's knobs."""
        return self._section(WorkerSettings)

    @cached_property
    def policy(self) -> PolicySettings:
        """Policy file, signers and reloads."""
        return self._section(PolicySettings)

    @cached_property
    def audit(self) -> AuditSettings:
        """The audit trail in Redis."""
        return self._section(AuditSettings)

    @cached_property
    def web(self) -> WebSettings:
        """Metrics and health probes: bind address and each process's port."""
        return self._section(WebSettings)


def load_settings(**overrides: object) -> Settings:
    """Build the one settings object; explicit overrides win over the environment.

    Raises:
        ConfigError: naming each bad ``JITWATCH_*`` variable and what it expects.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # keys are checked by pydantic
    except ValidationError as exc:
        problems = "\n".join(
            f"  - JITWATCH_{str(error['loc'][0]).upper()}: {error['msg']}" if error["loc"]
            else f"  - {error['msg']}"  # a check across fields names them in its message
            for error in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid settings:\n{problems}") from exc


ENVIRONMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "kafka": ("kafka_bootstrap", "kafka_security_protocol", "kafka_sasl_mechanism",
              "kafka_sasl_username", "kafka_sasl_password_file", "kafka_oauth_token_endpoint",
              "kafka_oauth_client_id", "kafka_oauth_client_secret_file", "kafka_oauth_scope",
              "kafka_oauth_audience", "kafka_oauth_token_file", "kafka_ssl_cafile",
              "kafka_ssl_certfile", "kafka_ssl_keyfile"),
    "inputs": ("topic_requests", "topic_sessions"),
    "decisions": ("topic_decisions",),
    "siem": ("app_id", "topic_decisions", "topic_decisions_ocsf"),
    "topics": ("app_id", "topic_requests", "topic_sessions", "topic_decisions",
               "topic_deadletter", "topic_notices", "topic_partitions", "topic_replication"),
    "worker": ("policy_file", "policy_signers_file", "policy_poll_s", "data_dir", "store",
               "standby_replicas", "batch_max", "producer_linger_ms", "max_event_bytes",
               "max_stored_bytes", "expiry_check_s", "expiry_grace_s", "session_timeout_s",
               "batch_handoff", "web_host", "web_port"),
    "sink": ("redis_url", "redis_user", "redis_password_file", "audit_group",
             "audit_key_prefix", "web_host", "audit_web_port"),
    "notary": ("redis_url", "notary_redis_user", "notary_redis_password_file",
               "audit_key_prefix", "topic_partitions", "topic_decisions",
               "topic_audit_checkpoints", "audit_signing_key_file",
               "audit_checkpoint_every", "audit_checkpoint_interval_s", "web_host",
               "notary_web_port"),
    "verifier": ("redis_url", "verifier_redis_user", "verifier_redis_password_file",
                 "audit_key_prefix", "topic_partitions"),
    "verify": ("audit_verify_key_file", "audit_checkpoint_every", "audit_checkpoint_interval_s",
               "topic_audit_checkpoints"),
    "identity": ("principals_file", "audit_group", "policy_file", "policy_signers_file"),
    "policy": ("policy_file", "max_event_bytes", "max_stored_bytes"),
    "log": ("log_level",),
}
"""Which ``JITWATCH_*`` variables each kind of command reads (for its ``--help``); the
``*_password`` variables stand behind their ``*_password_file``."""


def _first_sentence(text: str) -> str:
    text = " ".join(text.replace("``", "").split())
    end = re.search(r"(?<!e\.g)(?<!i\.e)\.(?:\s|$)", text)
    return text if end is None else text[:end.start()]


def environment_help(*groups: str) -> str:
    """The ``--help`` epilog listing the variables of ``groups``: name, default, meaning."""
    names = list(dict.fromkeys(name for group in groups for name in ENVIRONMENT_GROUPS[group]))
    lines = ["environment (README, Settings):"]
    for name in names:
        field = Settings.model_fields[name]
        default = "unset" if field.default is None else str(field.default)
        meaning = _first_sentence(field.description or "")
        lines.append(f"  JITWATCH_{name.upper()} [{default}]")
        if meaning:
            lines.append(textwrap.fill(meaning, width=90, initial_indent=" " * 6,
                                       subsequent_indent=" " * 6))
    return "\n".join(lines)
