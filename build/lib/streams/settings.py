"""Runtime settings, read once in ``main`` from ``JITWATCH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, StringConstraints, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import ConfigError
from streams.kafka_security import KafkaSecurity
from streams.policy_control import PolicyTrust

__all__ = ["Settings", "load_settings"]

TopicName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]


class Settings(KafkaSecurity, PolicyTrust, BaseSettings):
    """Every knob of the worker and the audit sink; frozen once built.

    Kafka authentication and TLS (``JITWATCH_KAFKA_SECURITY_PROTOCOL``, ``_SASL_*``,
    ``_SSL_*``) come from :class:`streams.kafka_security.KafkaSecurity`, policy change
    control (``JITWATCH_POLICY_SIGNERS_FILE``, ``_POLICY_POLL_S``) from
    :class:`streams.policy_control.PolicyTrust`.
    """

    model_config = SettingsConfigDict(env_prefix="JITWATCH_", frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    """Kafka bootstrap servers, ``host:port[,host:port]``."""
    redis_url: Annotated[str, StringConstraints(pattern=r"^(redis|rediss|unix)://")] = \
        "redis://127.0.0.1:6379/0"
    """Redis for the audit trail: ``redis://host:port/db`` (``rediss://`` with TLS)."""
    app_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")] = "jitwatch"
    """Consumer group of the workers and prefix of their changelog topics."""
    topic_requests: TopicName = "jit.requests"
    topic_sessions: TopicName = "jit.sessions"
    topic_decisions: TopicName = "jit.decisions"
    topic_deadletter: TopicName = "jit.deadletter"
    topic_partitions: int = Field(default=8, ge=1, le=10_000)
    """Partitions of every topic; inputs and changelogs must all have this many."""
    topic_replication: int = Field(default=1, ge=1, le=7)
    policy_file: Path | None = None
    """Policy TOML; the packaged default policy when unset."""
    data_dir: Path = Path(".jitwatch-data")
    """Where the worker keeps its RocksDB tables (rebuilt from changelogs when lost)."""
    store: str = "rocksdb://"
    """faust table store URL: ``rocksdb://`` in production, ``memory://`` for experiments."""
    standby_replicas: int = Field(default=1, ge=0, le=5)
    batch_max: int = Field(default=500, ge=1, le=100_000)
    """Most events decided in one batch."""
    producer_linger_ms: int = Field(default=2, ge=0, le=1000)
    """How long the worker's producer gathers records into one request: a little latency
    for far fewer produce requests (verdicts and changelog writes) under load."""
    max_event_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Inputs larger than this go to the dead letter topic."""
    expiry_check_s: float = Field(default=0.2, gt=0, le=60)
    """How often the expiry timer looks for deadlines that passed."""
    expiry_grace_s: float = Field(default=0.5, ge=0, le=60)
    """How long past a deadline the timer waits, so earlier events are decided first."""
    session_timeout_s: float = Field(default=10.0, ge=3, le=300)
    """How soon the group notices a worker that died without leaving (kill -9)."""
    audit_group: Annotated[str, StringConstraints(min_length=1)] = "jitwatch-audit"
    """Consumer group of the audit sink (apart from the workers')."""
    audit_key_prefix: Annotated[str, StringConstraints(min_length=1)] = "jitwatch:audit"
    log_level: str = "info"
    # Issue D: Redis ACL users per role and the notary's keys. A password comes from
    # JITWATCH_<ROLE>_PASSWORD or, better, a file named by JITWATCH_<ROLE>_PASSWORD_FILE;
    # SecretStr keeps it out of reprs and logs. No user: the URL's (or Redis' default) user.
    redis_user: str | None = None
    """ACL user of the audit sink (appends chains and indexes)."""
    redis_password: SecretStr | None = None
    redis_password_file: Path | None = None
    notary_redis_user: str | None = None
    """ACL user of the notary (reads chains, appends checkpoints)."""
    notary_redis_password: SecretStr | None = None
    notary_redis_password_file: Path | None = None
    verifier_redis_user: str | None = None
    """Read-only ACL user of ``jitwatch audit verify/query/export``."""
    verifier_redis_password: SecretStr | None = None
    verifier_redis_password_file: Path | None = None
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


    @property
    def topic_commands(self) -> str:
        """The watcher's own command topic (expiry ticks), co-partitioned with the inputs."""
        return f"{self.app_id}-commands"


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
