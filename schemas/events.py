"""Input events of the wire contract (``jit.requests`` and ``jit.sessions``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictBool, StringConstraints, TypeAdapter, model_validator

from schemas._base import Identifier, Model, TenantName, UtcDatetime, edit_distance

__all__ = [
    "DOCUMENTED_FIELDS",
    "INPUT_EVENT",
    "MISSPELLING_DISTANCE",
    "ClockTick",
    "ExtensionRequested",
    "InputEvent",
    "LockReleased",
    "LockTarget",
    "RequestCreated",
    "RequestReviewed",
    "RequestWithdrawn",
    "Resource",
    "Reviewer",
    "Sensitivity",
    "SessionActivity",
    "SessionEnded",
    "SessionStarted",
    "Subject",
    "SubjectKind",
    "TaskCompleted",
    "misspelt_field",
]

SubjectKind = Literal["human", "workload", "agent"]
Sensitivity = Literal["low", "medium", "high", "critical"]

SubjectId = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Text = Annotated[str, StringConstraints(max_length=4096)]
Signature = Annotated[str, StringConstraints(max_length=256)]


class Subject(Model):
    """The identity asking for or using access: a person, a workload or an AI agent.

    Every field is an identity claim, so an unknown one is refused rather than ignored: a
    misspelt ``knd`` or ``atested`` would otherwise fall back to its default silently.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: SubjectId
    kind: SubjectKind = "human"
    issuer: Text | None = None
    attested: StrictBool = False
    owner: Text | None = None


class Resource(Model):
    """One resource a request asks for. A missing sensitivity counts as ``high`` (fail closed)."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    env: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    sensitivity: Sensitivity = "high"
    roles: tuple[Annotated[str, StringConstraints(min_length=1, max_length=256)], ...] = ()


MISSPELLING_DISTANCE = 2
"""A top-level key this many edits (or fewer, ignoring case) from a documented field name,
and not itself documented, is refused as a misspelling of it."""


def misspelt_field(key: str) -> str | None:
    """The documented field ``key`` is probably a misspelling of, else ``None``.

    Extension fields stay allowed (the contract's "extra fields are allowed") as long as
    their names are at least ``MISSPELLING_DISTANCE + 1`` edits from every documented one.
    """
    if key in DOCUMENTED_FIELDS:
        return None
    folded = key.casefold()
    best: tuple[int, int, str] | None = None
    for name in DOCUMENTED_FIELDS:
        distance = edit_distance(folded, name, MISSPELLING_DISTANCE)
        if distance > MISSPELLING_DISTANCE:
            continue
        # Ties go to the name sharing the longest start ("ttl": ttl_s, not at).
        shared = next((n for n, (a, b) in enumerate(zip(folded, name, strict=False))
                       if a != b), min(len(folded), len(name)))
        if best is None or (distance, -shared, name) < best:
            best = (distance, -shared, name)
    return None if best is None else best[2]


class _Event(Model):
    event_id: Identifier
    at: UtcDatetime
    tenant: TenantName = "default"
    subject: Subject

    @model_validator(mode="before")
    @classmethod
    def _no_misspelt_fields(cls, data: Any) -> Any:
        # Issue H: "tennant" must not leave the event in tenant "default".
        if isinstance(data, dict):
            for key in data:
                if key not in DOCUMENTED_FIELDS and isinstance(key, str):
                    meant = misspelt_field(key)
                    if meant is not None:
                        raise ValueError(
                            f"field {key!r} is not in the contract; did you mean {meant!r}? "
                            f"rename it to {meant!r} (an extension field's name must differ "
                            f"from every documented field by more than {MISSPELLING_DISTANCE} "
                            "edits)")
        return data


class RequestCreated(_Event):
    """A subject asks for access to one or more resources."""

    type: Literal["request.created"]
    request_id: Identifier
    resources: tuple[Resource, ...] = Field(min_length=1, max_length=256)
    ttl_s: int | None = Field(default=None, gt=0, le=366 * 24 * 3600)
    reason: Text | None = None
    ticket: Text | None = None
    break_glass: StrictBool = False


class ExtensionRequested(_Event):
    """Issue J: a subject asks for more time on its live grant ``request_id``; ``ttl_s`` is
    added to the grant's current ``expires_at``. Decided like a new request for that time."""

    type: Literal["request.extension_requested"]
    request_id: Identifier
    ttl_s: int = Field(gt=0, le=366 * 24 * 3600)
    reason: Text | None = None
    ticket: Text | None = None


class Reviewer(Model):
    """The person who reviewed a request."""

    id: SubjectId


class RequestReviewed(_Event):
    """A human reviewer approved or denied a pending request."""

    type: Literal["request.reviewed"]
    request_id: Identifier
    reviewer: Reviewer
    outcome: Literal["approved", "denied"]
    comment: Text | None = None
    key_id: Identifier | None = None
    """Which of the reviewer's keys (listed in the policy) made ``signature``."""
    signature: Signature | None = None
    """Base64 Ed25519 signature over the review's canonical encoding, which binds the
    request it decides (``jit.review-signature/v2``, policy/reviews.py); a review, approval
    or denial, counts only with a valid one."""


class RequestWithdrawn(_Event):
    """The subject no longer needs the access it asked for."""

    type: Literal["request.withdrawn"]
    request_id: Identifier


class LockTarget(Model):
    """What a lock release applies to: a whole subject or one request."""

    subject: SubjectId | None = None
    request_id: Identifier | None = None


class LockReleased(_Event):
    """An operator releases a lock before it expires.

    It takes effect only when signed by a key the policy lists for the operator ``by``
    names (``operators``), and never when that operator is the subject locked.
    """

    type: Literal["lock.released"]
    target: LockTarget
    by: Text | None = None
    """The operator id that signed the release (``operators[].operator`` in the policy)."""
    key_id: Identifier | None = None
    """Which of the operator's keys (listed in the policy) made ``signature``."""
    signature: Signature | None = None
    """Base64 Ed25519 signature over the release's canonical encoding
    (``jit.release-signature/v1``, policy/releases.py); missing: not authorized."""


class SessionStarted(_Event):
    """A gateway opened a session that uses a grant."""

    type: Literal["session.started"]
    session_id: Identifier
    request_id: Identifier
    resource: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class SessionActivity(_Event):
    """Something a subject did inside a session."""

    type: Literal["session.activity"]
    session_id: Identifier
    resource: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    action: Text


class SessionEnded(_Event):
    """A session closed."""

    type: Literal["session.ended"]
    session_id: Identifier


class TaskCompleted(_Event):
    """The work a grant was for is done; the grant should end now."""

    type: Literal["task.completed"]
    request_id: Identifier


class ClockTick(Model):
    """Internal: event time reached ``at`` for one subject, so whatever ran out ends.

    Made by the replay (and the stream's expiry timer), never accepted from input topics:
    it is not part of :data:`InputEvent`.
    """

    type: Literal["clock.tick"] = "clock.tick"
    event_id: str
    at: UtcDatetime
    tenant: str
    subject: Subject


DOCUMENTED_FIELDS: frozenset[str] = frozenset().union(*(
    model.model_fields for model in (RequestCreated, ExtensionRequested, RequestReviewed,
                                     RequestWithdrawn,
                                     LockReleased, SessionStarted, SessionActivity,
                                     SessionEnded, TaskCompleted)))
"""Every top-level field name the contract documents, over all input event types."""

InputEvent = Annotated[
    RequestCreated
    | ExtensionRequested
    | RequestReviewed
    | RequestWithdrawn
    | LockReleased
    | SessionStarted
    | SessionActivity
    | SessionEnded
    | TaskCompleted,
    Field(discriminator="type"),
]
"""Every input event; ``type`` selects the model."""

INPUT_EVENT: TypeAdapter[InputEvent] = TypeAdapter(InputEvent)
"""Validator for raw input: ``INPUT_EVENT.validate_json(raw_bytes)``."""
