"""The policy: what the pure core enforces, parsed from a reviewed TOML text."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.decisions import PolicyRef
from schemas.errors import PolicyError

__all__ = ["LoadedPolicy", "Policy", "parse_policy"]

EnvName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Policy(BaseModel):
    """Rules and limits, one version per reviewed text. Unknown keys are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    max_active_resources: int = Field(default=3, ge=1, le=10_000)
    """At most this many distinct resources live per subject."""
    exclusive_env_groups: tuple[tuple[EnvName, ...], ...] = (("prod", "research"),)
    """A subject may hold grants in at most one environment of each group (kept sorted, so
    the exported schema and every summary are deterministic)."""
    default_ttl_s: int = Field(default=3600, gt=0)
    """Lifetime of a grant whose request names no ``ttl_s``."""
    max_ttl_s: int = Field(default=8 * 3600, gt=0)
    """Longer requested lifetimes are clamped to this."""

    @field_validator("exclusive_env_groups")
    @classmethod
    def _groups_have_two_envs(
        cls, groups: tuple[tuple[str, ...], ...]
    ) -> tuple[tuple[str, ...], ...]:
        normalised = tuple(tuple(sorted(set(group))) for group in groups)
        for group in normalised:
            if len(group) < 2:
                raise ValueError(
                    f"group {list(group)} names fewer than two distinct environments; "
                    "list at least two, e.g. [\"prod\", \"research\"]"
                )
        return normalised

    @model_validator(mode="after")
    def _default_within_max(self) -> Policy:
        if self.default_ttl_s > self.max_ttl_s:
            raise ValueError(
                f"default_ttl_s ({self.default_ttl_s}) exceeds max_ttl_s ({self.max_ttl_s}); "
                "lower default_ttl_s or raise max_ttl_s"
            )
        return self


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy together with the reference every decision pins."""

    policy: Policy
    ref: PolicyRef


def parse_policy(text: str, source: str = "<policy>") -> LoadedPolicy:
    """Parse and validate a TOML policy text; ``sha256`` is over the exact bytes given.

    Raises:
        PolicyError: naming the source, each bad field's location and how to fix it.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  - {'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
            + (f" (got {error['input']!r})" if error["type"] != "missing" else "")
            for error in exc.errors(include_url=False)
        )
        raise PolicyError(f"{source}: invalid policy:\n{problems}") from exc
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedPolicy(policy=policy, ref=PolicyRef(version=policy.version, sha256=digest))
