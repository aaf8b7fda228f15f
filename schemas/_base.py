"""Shared building blocks of every wire and state model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
)

__all__ = ["TENANT_PATTERN", "Identifier", "Model", "TenantName", "UtcDatetime", "edit_distance",
           "format_time", "trusted_model"]


def _to_utc(value: datetime) -> datetime:
    # Every time is kept in UTC so that equal instants encode to equal bytes.
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        # pydantic turns only ValueError into a validation error; an OverflowError would
        # escape the decoder and stop the worker on one record.
        raise ValueError("time falls outside years 1 to 9999 once converted to UTC") from exc


def _not_a_number(value: object) -> object:
    # pydantic would read a number as Unix time; the contract says RFC 3339.
    if isinstance(value, int | float):
        raise ValueError("expected an RFC 3339 time such as 2026-11-23T10:00:00Z, "
                         "not a number")
    return value


UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_to_utc)]
"""An RFC 3339 time with an offset, normalised to UTC. Naive times and numbers are refused."""

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]
"""A non-empty id of at most 128 characters (event, request, session ids)."""

TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""Every tenant name, in events and in policies: lower case, digits and hyphens.

One spelling per tenant: "ACME", "acme " and "acme" would otherwise be three trust zones
with their own policy sections and their own state (break-glass ration included)."""

TenantName = Annotated[str, StringConstraints(pattern=TENANT_PATTERN)]
"""A tenant name matching :data:`TENANT_PATTERN`; anything else is refused, not normalised."""


def edit_distance(first: str, second: str, limit: int) -> int:
    """Levenshtein distance of two strings, or ``limit + 1`` once it is surely above
    ``limit`` (cheap for long strings: the lengths alone tell)."""
    if abs(len(first) - len(second)) > limit:
        return limit + 1
    previous = list(range(len(second) + 1))
    for row, char in enumerate(first, start=1):
        current = [row]
        for column, other in enumerate(second, start=1):
            current.append(min(previous[column] + 1, current[column - 1] + 1,
                               previous[column - 1] + (char != other)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return min(previous[-1], limit + 1)


class Model(BaseModel):
    """Immutable model; unknown fields are ignored, as the contract allows."""

    model_config = ConfigDict(frozen=True, extra="ignore")


_Model = TypeVar("_Model", bound=BaseModel)
_set_attribute = object.__setattr__


def trusted_model(cls: type[_Model], values: dict[str, Any], fields_set: set[str]) -> _Model:
    """What ``cls.model_construct(**values)`` builds, without its per-field Python loop.

    For values the pure core made (already typed as validation leaves them), where
    validating again or model_construct's walk over every field's aliases and defaults
    would cost more than the decision. ``values`` must name every field, in the model's
    order; ``fields_set`` is what model_construct would record (the names passed). Only
    for models without ``model_post_init``, private attributes or extra fields.
    tests/policy/test_decisions.py pins the equivalence with model_construct.
    """
    model = cls.__new__(cls)
    _set_attribute(model, "__dict__", values)
    _set_attribute(model, "__pydantic_fields_set__", fields_set)
    _set_attribute(model, "__pydantic_extra__", None)
    _set_attribute(model, "__pydantic_private__", None)
    return model


def format_time(value: datetime) -> str:
    """Format a UTC time as RFC 3339 with a ``Z`` suffix, milliseconds only when present."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
