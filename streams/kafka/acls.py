"""The declarative principals file (``ops/principals.toml``) and the Kafka ACLs it stands for.

One file says who may do what; :func:`acl_bindings` turns it into ACL bindings for the
configured topic and group names, :func:`apply_acls` creates them (as the admin principal)
and :func:`describe_acls` reads back what the broker holds for one principal. aiokafka has
no public ACL API, so the two calls send the protocol's CreateAcls / DescribeAcls requests
through the admin client.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest, DescribeAclsRequest
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from schemas.errors import ConfigError
from streams.settings import TopicSettings

__all__ = [
    "AclBinding",
    "Grant",
    "Principal",
    "PrincipalsFile",
    "acl_bindings",
    "apply_acls",
    "describe_acls",
    "load_principals",
]

Operation = Literal["read", "write", "describe", "create", "describe_configs"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=249)]

# Kafka's wire codes (org.apache.kafka.common.acl / resource).
_RESOURCE = {"topic": 2, "group": 3}
_RESOURCE_NAMES = {code: name for name, code in _RESOURCE.items()}
_PATTERN = {"literal": 3, "prefixed": 4}
_PATTERN_NAMES = {code: name for name, code in _PATTERN.items()}
_OPERATION = {"read": 3, "write": 4, "create": 5, "describe": 8, "describe_configs": 10}
_OPERATION_NAMES = {code: name for name, code in _OPERATION.items()}
_OPERATION_NAMES.update({2: "all", 6: "delete", 7: "alter", 11: "alter_configs",
                         12: "idempotent_write"})
_ANY = 1
_ALLOW = 3


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Grant(_Strict):
    """Operations allowed on one resource (exactly one of the four resource keys)."""

    topic: Name | None = None
    topic_prefix: Name | None = None
    group: Name | None = None
    group_prefix: Name | None = None
    operations: tuple[Operation, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_resource(self) -> Grant:
        named = [key for key in ("topic", "topic_prefix", "group", "group_prefix")
                 if getattr(self, key) is not None]
        if len(named) != 1:
            raise ValueError("name exactly one of topic, topic_prefix, group, group_prefix "
                             f"(got {', '.join(named) or 'none'})")
        return self


class Principal(_Strict):
    """One non-human identity and what it may do."""

    about: str = ""
    allow: tuple[Grant, ...] = ()


class PrincipalsFile(_Strict):
    """The whole declarative file."""

    principals: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
                     Principal]


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    """One ALLOW ACL: ``principal`` may ``operation`` on a resource, from any host."""

    principal: str
    """``User:<name>``."""
    resource: str
    """``topic`` or ``group``."""
    pattern: str
    """``literal`` or ``prefixed``."""
    name: str
    operation: str

    def __str__(self) -> str:
        star = "*" if self.pattern == "prefixed" else ""
        return f"{self.principal} may {self.operation} {self.resource} {self.name}{star}"


def load_principals(path: Path) -> PrincipalsFile:
    """Read and validate the principals file.

    Raises:
        ConfigError: naming the file and each bad entry.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read principals file {path} (JITWATCH_PRINCIPALS_FILE): "
                          f"{exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return PrincipalsFile.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  - {'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False))
        raise ConfigError(f"{path}: invalid principals file:\n{problems}") from exc


def _names(topics: TopicSettings, audit_group: str) -> dict[str, str]:
    return {
        "requests": topics.topic_requests,
        "sessions": topics.topic_sessions,
        "decisions": topics.topic_decisions,
        "deadletter": topics.topic_deadletter,
        "notices": topics.topic_notices,
        "audit_checkpoints": topics.topic_audit_checkpoints,
        "decisions_ocsf": topics.topic_decisions_ocsf,
        "siem_group": topics.siem_group,
        "app_id": topics.app_id,
        "audit_group": audit_group,
    }


def acl_bindings(principals: PrincipalsFile, topics: TopicSettings, audit_group: str,
                 only: str | None = None) -> list[AclBinding]:
    """Every ACL the file stands for with these topic names and the audit sink's group (of
    one principal if given).

    Raises:
        ConfigError: for an unknown ``{name}`` or principal.
    """
    if only is not None and only not in principals.principals:
        raise ConfigError(f"principal {only!r} is not in the principals file; it declares "
                          f"{', '.join(sorted(principals.principals))}")
    names = _names(topics, audit_group)
    found: set[AclBinding] = set()
    for user, principal in principals.principals.items():
        if only is not None and user != only:
            continue
        for grant in principal.allow:
            for key, resource, pattern in (("topic", "topic", "literal"),
                                           ("topic_prefix", "topic", "prefixed"),
                                           ("group", "group", "literal"),
                                           ("group_prefix", "group", "prefixed")):
                template = getattr(grant, key)
                if template is None:
                    continue
                try:
                    name = template.format(**names)
                except KeyError as exc:
                    raise ConfigError(
                        f"principal {user}: unknown name {{{exc.args[0]}}} in {template!r}; "
                        f"known: {', '.join('{' + known + '}' for known in names)}") from exc
                found.update(AclBinding(f"User:{user}", resource, pattern, name, operation)
                             for operation in grant.operations)
    return sorted(found)


async def apply_acls(admin: AIOKafkaAdminClient, bindings: list[AclBinding]) -> None:
    """Create the ACLs (creating an existing ACL again is a no-op on the broker).

    Raises:
        ConfigError: with the broker's message when one is refused (e.g. not run as admin).
    """
    for binding in bindings:
        request = CreateAclsRequest(
            _RESOURCE[binding.resource], binding.name, _PATTERN[binding.pattern],
            binding.principal, "*", _OPERATION[binding.operation], _ALLOW)
        response = await admin._send_request(request)  # noqa: SLF001 - no public ACL API
        for error_code, error_message in response.creation_responses:
            if error_code != 0:
                raise ConfigError(f"the broker refused the ACL '{binding}' (error "
                                  f"{error_code}: {error_message}); run `jitwatch acls "
                                  "apply` as the admin principal")


async def describe_acls(admin: AIOKafkaAdminClient, principal: str) -> list[AclBinding]:
    """The ALLOW ACLs the broker holds for ``principal`` (``User:<name>``).

    Raises:
        ConfigError: when the broker refuses (describing ACLs needs cluster DESCRIBE).
    """
    # A null resource name or host in the filter means "any".
    request = DescribeAclsRequest(_ANY, None, _ANY, principal, None, _ANY, _ANY)
    response = await admin._send_request(request)  # noqa: SLF001 - no public ACL API
    if response.error_code != 0:
        raise ConfigError(f"the broker refused to describe ACLs of {principal} (error "
                          f"{response.error_code}: {response.error_message})")
    found = []
    for resource_type, resource_name, pattern_type, acls in response.resources:
        for acl_principal, _host, operation, permission in acls:
            if acl_principal == principal and permission == _ALLOW:
                found.append(AclBinding(
                    acl_principal, _RESOURCE_NAMES.get(resource_type, str(resource_type)),
                    _PATTERN_NAMES.get(pattern_type, str(pattern_type)), resource_name,
                    _OPERATION_NAMES.get(operation, str(operation))))
    return sorted(found)
