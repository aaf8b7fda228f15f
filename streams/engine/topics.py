"""Topic binding: each input event type is decided only from the topic it belongs on.

The topics are separate trust zones: ``jit.requests`` is written by upstream brokers and
reviewers' tools, ``jit.sessions`` by gateways, session recorders and task runners, and
Kafka ACLs may grant them separately (ops/principals.toml). Were every type accepted from
either, a principal allowed to write only session events could create requests. So a
record whose type belongs on another topic is a dead letter (``wrong-topic``), decided here
in the pure layer so the worker and :func:`streams.engine.plan.plan_batch` share it. A
replay file has no topics: ``simulate`` accepts every type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from schemas.errors import InputError
from schemas.events import InputEvent

__all__ = ["EVENT_TOPICS", "WRONG_TOPIC", "InputTopics"]

WRONG_TOPIC = "wrong-topic"
"""The dead-letter ``error.class`` of an event that came on another topic than its own."""

EVENT_TOPICS: Mapping[str, Literal["requests", "sessions"]] = {
    "request.created": "requests",
    "request.extension_requested": "requests",
    "request.reviewed": "requests",
    "request.withdrawn": "requests",
    "lock.released": "requests",
    "session.started": "sessions",
    "session.activity": "sessions",
    "session.ended": "sessions",
    "task.completed": "sessions",
}
"""Each event type's input topic, as schemas/CONTRACT.md lists them ("Topic binding")."""


@dataclass(frozen=True, slots=True)
class InputTopics:
    """The input topics' names (the settings' ``topic_requests`` and ``topic_sessions``),
    passed in as plain data."""

    requests: str
    sessions: str

    def home_of(self, event_type: str) -> str:
        """The name of the topic ``event_type`` belongs on (KeyError for an unknown type)."""
        return self.requests if EVENT_TOPICS[event_type] == "requests" else self.sessions

    def check(self, event: InputEvent, topic: str) -> InputEvent:
        """``event`` if it came on its own topic.

        Raises:
            InputError: ``wrong-topic``, naming the type, the topic it came on and the
                topic it belongs on.
        """
        home = self.home_of(event.type)
        if topic != home:
            raise InputError(WRONG_TOPIC,
                             f"{event.type} came on topic {topic!r} but belongs on {home!r}; "
                             "each event type is accepted only from its own topic")
        return event
