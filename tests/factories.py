"""Small builders of contract events for tests (no broker needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import INPUT_EVENT, InputEvent

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A time ``seconds`` after the tests' epoch T0."""
    return T0 + timedelta(seconds=seconds)


def raw_request(
    request_id: str,
    resources: list[tuple[str, str]] | list[dict[str, Any]],
    *,
    t: float = 0,
    subject: str = "alice",
    tenant: str = "default",
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``request.created`` as a producer would send it; resources as (id, env) pairs,
    claimed ``low`` (the packaged policy names no resources and escalates unknown ones from
    medium up: a test of another rule asks for what it would auto-approve), or as dicts."""
    listed = [
        {"id": item[0], "env": item[1], "sensitivity": "low"} if isinstance(item, tuple)
        else item
        for item in resources
    ]
    return {
        "type": "request.created",
        "event_id": event_id or f"e-{request_id}",
        "at": at(t).isoformat().replace("+00:00", "Z"),
        "tenant": tenant,
        "subject": {"id": subject, "kind": "human"},
        "request_id": request_id,
        "resources": listed,
        "reason": "testing",
        **extra,
    }


def raw_event(kind: str, *, t: float = 0, subject: str = "alice", event_id: str,
              tenant: str = "default", **fields: Any) -> dict[str, Any]:
    """Any other contract event with the common fields filled in."""
    return {
        "type": kind,
        "event_id": event_id,
        "at": at(t).isoformat().replace("+00:00", "Z"),
        "tenant": tenant,
        "subject": {"id": subject},
        **fields,
    }


def event(raw: dict[str, Any]) -> InputEvent:
    """Validate a raw dict as the stream's decoder would."""
    return INPUT_EVENT.validate_python(raw)


def request(request_id: str, resources: list[tuple[str, str]], **kwargs: Any) -> InputEvent:
    """A validated ``request.created``."""
    return event(raw_request(request_id, resources, **kwargs))


def variant(base: Any, **sections: dict[str, Any] | tuple[Any, ...]) -> Any:
    """``base`` (a Policy) with sections of its defaults replaced or updated, unvalidated.

    Tenant sections equal to the defaults (the packaged policy's named tenants, which
    replace no section) get the same change, as they would in a policy text."""
    defaults = base.defaults
    updates: dict[str, Any] = {}
    for name, change in sections.items():
        current = getattr(defaults, name)
        updates[name] = (current.model_copy(update=change) if isinstance(change, dict)
                         else change)
    changed = defaults.model_copy(update=updates)
    tenants = {name: changed if tenant == defaults else tenant
               for name, tenant in base.tenants.items()}
    return base.model_copy(update={"defaults": changed, "tenants": tenants})
