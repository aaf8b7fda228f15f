"""Decisions as OCSF events (issue K, "SIEM: OCSF"): one pure mapping, no Kafka.

``jitwatch siem`` publishes what :func:`to_ocsf` returns, so SIEMs ingest verdicts without
a custom parser. The target is OCSF 1.8.0, the newest version the ``ocsf-json-schema``
package ships; tests validate every golden decision's event against its JSON Schema.

Access changes (approve, deny, escalate, revoke) are class 3005 *User Access Management*:
its activities are *Assign Privileges* and *Revoke Privileges*, which is what a grant and a
revoke are. Locks are not privileges but a frozen identity: class 3001 *Account Change*,
activities *Lock* and *Unlock*. Every event carries the *security control* profile
(``action_id``, ``disposition_id``), because each verdict is a control's decision.
schemas/CONTRACT.md ("OCSF on jit.decisions.ocsf") has the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from schemas.decisions import Decision

__all__ = ["OCSF_VERSION", "PRODUCT_NAME", "Mapping", "mapping_of", "to_ocsf"]

OCSF_VERSION: Final = "1.8.0"
"""The OCSF version every event declares in ``metadata.version``."""

PRODUCT_NAME: Final = "jitwatch"

_USER_ACCESS: Final = (3005, "User Access Management")
_ACCOUNT_CHANGE: Final = (3001, "Account Change")

# The causes the subject itself sent: it is then the actor as well as the target.
_BY_SUBJECT: Final = frozenset({
    "request.created", "request.extension_requested", "request.withdrawn",
    "session.started", "session.activity", "session.ended"})

_KINDS: Final = {"human": (1, "User"), "workload": (4, "Service"), "agent": (99, "Agent")}


@dataclass(frozen=True, slots=True)
class Mapping:
    """Where one kind of verdict lands in OCSF: class, activity, security-control outcome,
    status and severity (ids with their captions, as OCSF pairs them)."""

    class_: tuple[int, str]
    activity: tuple[int, str]
    action: tuple[int, str]
    disposition: tuple[int, str]
    status: tuple[int, str]
    severity: tuple[int, str]


_MAPPINGS: Final = {
    "approve": Mapping(_USER_ACCESS, (1, "Assign Privileges"), (1, "Allowed"), (1, "Allowed"),
                       (1, "Success"), (1, "Informational")),
    "deny": Mapping(_USER_ACCESS, (1, "Assign Privileges"), (2, "Denied"), (2, "Blocked"),
                    (2, "Failure"), (3, "Medium")),
    # A human must review first: nothing is granted yet, nothing failed either.
    "escalate": Mapping(_USER_ACCESS, (1, "Assign Privileges"), (99, "Escalated"),
                        (14, "Delayed"), (99, "Pending review"), (2, "Low")),
    "revoke": Mapping(_USER_ACCESS, (2, "Revoke Privileges"), (4, "Modified"),
                      (24, "Access Revoked"), (1, "Success"), (1, "Informational")),
    "lock": Mapping(_ACCOUNT_CHANGE, (9, "Lock"), (2, "Denied"), (2, "Blocked"),
                    (1, "Success"), (4, "High")),
    "unlock": Mapping(_ACCOUNT_CHANGE, (12, "Unlock"), (1, "Allowed"), (9, "Restored"),
                      (1, "Success"), (1, "Informational")),
}

# The approve that closes a break-glass post-review grants nothing (CONTRACT, issue J).
_POST_REVIEW_DONE: Final = Mapping(_USER_ACCESS, (99, "Post-review done"), (1, "Allowed"),
                                   (8, "Approved"), (1, "Success"), (1, "Informational"))


def mapping_of(decision: Decision) -> Mapping:
    """The OCSF class, activity and outcome of ``decision``."""
    if decision.action == "approve" and not decision.resources and decision.expires_at is None:
        return _POST_REVIEW_DONE
    return _MAPPINGS[decision.action]


def _ms(moment: datetime) -> int:
    # OCSF timestamp_t: milliseconds since the epoch.
    return int(moment.timestamp() * 1000)


def _user(decision: Decision) -> dict[str, Any]:
    type_id, type_name = _KINDS[decision.subject.kind]
    user: dict[str, Any] = {"uid": decision.subject.id, "name": decision.subject.id,
                            "type_id": type_id, "type": type_name}
    if decision.subject.owner is not None:
        # The accountable team: the group an auditor asks about.
        user["groups"] = [{"name": decision.subject.owner, "type": "owner"}]
    return user


def _resources(decision: Decision) -> list[dict[str, Any]]:
    resources = [{"uid": resource, "type": "resource"} for resource in decision.resources]
    resources += [{"uid": target, "type": "grant"} for target in decision.targets]
    return resources


def to_ocsf(decision: Decision, product_version: str) -> dict[str, Any]:
    """``decision`` as one OCSF 1.8.0 event (a JSON-ready dict, keys in a fixed order).

    ``product_version`` is jitwatch's version, for ``metadata.product``; passed in so the
    mapping stays a pure function of its arguments.
    """
    mapping = mapping_of(decision)
    class_uid, class_name = mapping.class_
    activity_id, activity_name = mapping.activity
    severity_id = mapping.severity[0]
    if decision.post_review:  # break-glass: someone must look at it afterwards
        severity_id = max(severity_id, 3)
    severity = {1: "Informational", 2: "Low", 3: "Medium", 4: "High"}[severity_id]
    event: dict[str, Any] = {
        "category_uid": 3,
        "category_name": "Identity & Access Management",
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {activity_name}",
        "time": _ms(decision.at),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": mapping.status[0],
        "status": mapping.status[1],
        "status_detail": decision.reason,
        "message": f"{decision.action} ({decision.rule.id}): {decision.reason}",
        "action_id": mapping.action[0],
        "action": mapping.action[1],
        "disposition_id": mapping.disposition[0],
        "disposition": mapping.disposition[1],
        "metadata": {
            "version": OCSF_VERSION,
            "uid": decision.decision_id,
            "correlation_uid": decision.request_id,
            "original_event_uid": decision.cause.event_id,
            "event_code": decision.rule.id,
            "tenant_uid": decision.tenant,
            "logged_time": _ms(decision.emitted_at),
            "profiles": ["security_control"],
            "product": {"name": PRODUCT_NAME, "vendor_name": PRODUCT_NAME,
                        "version": product_version},
        },
        "policy": {
            "uid": decision.rule.id,
            "name": decision.rule.id,
            "desc": decision.rule.description,
            "version": decision.policy.version,
            "is_applied": True,
            "data": {"sha256": decision.policy.sha256},
        },
        "actor": _actor(decision),
        "user": _user(decision),
        "unmapped": {
            "action": decision.action,
            "targets": list(decision.targets),
            "expires_at": None if decision.expires_at is None
            else decision.expires_at.isoformat().replace("+00:00", "Z"),
            "post_review": decision.post_review,
            "cause": decision.cause.model_dump(mode="json"),
            "state": {"before": _state(decision.state.before),
                      "after": _state(decision.state.after)},
        },
    }
    if class_uid == _USER_ACCESS[0]:  # Account Change has neither (the lock's targets are
        # in ``unmapped.targets``)
        event["privileges"] = list(decision.resources)
        resources = _resources(decision)
        if resources:
            event["resources"] = resources
    if decision.expires_at is not None:
        event["end_time"] = _ms(decision.expires_at)
    if event["metadata"]["correlation_uid"] is None:
        del event["metadata"]["correlation_uid"]
    return event


def _actor(decision: Decision) -> dict[str, Any]:
    actor: dict[str, Any] = {"app_name": PRODUCT_NAME}
    if decision.cause.type in _BY_SUBJECT:
        actor["user"] = _user(decision)
    return actor


def _state(summary: Any) -> dict[str, Any]:
    return {"active_grants": summary.active_grants,
            "active_resources": summary.active_resources, "envs": list(summary.envs)}
