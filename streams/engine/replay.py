"""File replay: the same core as the stream, over a JSONL file of events in event time.

Decisions equal the stream's for the same input and policy (``decision_id`` included);
``emitted_at`` equals ``at`` and Kafka coordinates are null, so output is byte-identical
from run to run. ``simulate --diff`` compares two replays' :func:`outcomes` with
:func:`changed_events`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from policy import Step, next_deadline, step
from schemas._base import format_time
from schemas.decisions import Cause, Decision
from schemas.errors import InputError
from schemas.events import InputEvent
from schemas.notices import Notice
from schemas.policy import LoadedPolicy
from schemas.state import MAX_STORED_BYTES, StoredSubject
from streams.engine.bounds import fit
from streams.engine.codec import parse_line, record_of_line, subject_key
from streams.engine.deadlines import DeadlineIndex, decide_tick

__all__ = ["BadLine", "Item", "Replay", "UndecidedTick", "changed_events", "outcomes",
           "replay_lines"]


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be accepted; it never yields a decision."""

    number: int
    error_class: str
    message: str


@dataclass(frozen=True, slots=True)
class UndecidedTick:
    """An expiry that could not be decided (:func:`streams.engine.deadlines.decide_tick`):
    it ends nothing and yields no decision, as the stream dead-letters its tick command."""

    subject: str
    tenant: str
    at: datetime
    error_class: str
    message: str


@dataclass
class Replay:
    """What a replay produced, for the summary."""

    events: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    undecided_ticks: list[UndecidedTick] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    states: dict[bytes, StoredSubject] = field(default_factory=dict)
    """Each subject's state by its canonical key (:func:`streams.engine.codec.subject_key`)."""
    last_at: datetime | None = None
    """The latest event time seen."""
    notices: int = 0
    """Notices given (counted only when asked for)."""

    def record(self, decision: Decision) -> None:
        """Count one decision for the summary."""
        self.actions[decision.action] += 1
        self.rules[decision.rule.id] += 1


def _watch(deadlines: DeadlineIndex, replay: Replay, key: bytes, tenant: str) -> None:
    stored = replay.states.get(key)
    state = stored.tenants.get(tenant) if stored is not None else None
    deadlines.set(key, tenant, next_deadline(state) if state is not None else None)


def _keep(replay: Replay, key: bytes, result: Step, event: InputEvent | None,
          policy: LoadedPolicy, cause: Cause | None, max_stored_bytes: int,
          received: datetime | None = None) -> Step:
    """Store a changed step's value as the stream would (streams.engine.bounds): a subject
    with no tenant left is dropped, a value over the limit refused (at the broker time
    ``received`` the step was decided at). Returns the step whose decisions count."""
    if not result.changed:
        return result
    fitted = fit(result, replay.states.get(key), event, policy, cause, max_stored_bytes,
                 received=received)
    if fitted.oversized is None:
        if fitted.value is None:
            replay.states.pop(key, None)
        else:
            replay.states[key] = result.stored
    return fitted.step


Item = Decision | Notice | BadLine | UndecidedTick
"""What a replay yields, in the order the stream would publish it (notices only when
asked for)."""


def _published(replay: Replay, result: Step, notices: bool) -> Iterator[Decision | Notice]:
    """A step's decisions, counted, then its notices when asked for (issue J), as the
    stream sends them (streams.engine.plan)."""
    for decision in result.decisions:
        replay.record(decision)
        yield decision
    if notices:
        replay.notices += len(result.notices)
        yield from result.notices


def _ticks(deadlines: DeadlineIndex, until: datetime, policy: LoadedPolicy,
           replay: Replay, max_stored_bytes: int, notices: bool = False
           ) -> Iterator[Decision | Notice | UndecidedTick]:
    """Fire every deadline up to ``until`` in time order, as the stream's timer would; one
    at a time, since a tick may set its subject a new deadline before the others."""
    while (entry := deadlines.pop_due(until)) is not None:
        deadline, key, tenant = entry
        subject = key.decode("utf-8")
        try:
            result = decide_tick(replay.states[key], tenant, subject, deadline, policy)
        except InputError as exc:
            # Its deadline stays popped and its state as it was, as in the stream.
            undecided = UndecidedTick(subject, tenant, deadline, exc.error_class, exc.message)
            replay.undecided_ticks.append(undecided)
            yield undecided
            continue
        result = _keep(replay, key, result, None, policy, None, max_stored_bytes)
        _watch(deadlines, replay, key, tenant)
        yield from _published(replay, result, notices)


def replay_lines(
    lines: Iterable[bytes], policy: LoadedPolicy, replay: Replay, max_event_bytes: int,
    until: datetime | None = None, max_stored_bytes: int = MAX_STORED_BYTES,
    *, notices: bool = False,
) -> Iterator[Item]:
    """Decide every line in order; blank lines are skipped, bad ones reported by number.

    Lines are decided in the stream's order: by the broker's time a line carries, else by
    its ``at``, file order on ties (all lines are read first: bad ones are reported before
    any decision). Each is decided at the broker's time it carries (``broker_time``,
    issue H: per subject never earlier than the subject's last decision; an event whose
    ``at`` is further than ``time.max_skew_s`` from it is denied, or for other than requests
    and reviews reported as a bad line ``clock-skew``, as the stream dead-letters it), or at
    its own ``at`` when it carries none. That time drives expiry: before each event,
    everything any subject had run out by then ends, in time order. A file exported from
    the topics is in broker-time order, the order the stream decides in. ``until`` lets time
    run on after the last line. An expiry that cannot be decided is reported as an
    :class:`UndecidedTick`, never raised.

    A file has no topics, so every event type is accepted from it (the stream binds each
    type to its input topic: :mod:`streams.engine.topics`). A new state over
    ``max_stored_bytes`` is refused as the stream refuses it (``state-limit``; the stream
    also dead-letters the record): keep it equal to the worker's setting. With
    ``notices`` each step's notices (issue J, ``jit.notices``) follow its decisions.
    """
    deadlines = DeadlineIndex()
    accepted: list[tuple[int, InputEvent, datetime | None, bytes]] = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            event, received = parse_line(line, max_event_bytes)
        except InputError as exc:
            bad = BadLine(number, exc.error_class, exc.message)
            replay.bad_lines.append(bad)
            yield bad
            continue
        accepted.append((number, event, received, line))
    # The stream's order (streams.engine.plan): by broker time, else by ``at``; stable, so
    # the file's order stands on ties. A file exported from the topics is already in it.
    accepted.sort(key=_moment)
    for number, event, received, line in accepted:
        moment = _moment((number, event, received, line))
        replay.last_at = moment if replay.last_at is None else max(replay.last_at, moment)
        yield from _ticks(deadlines, moment, policy, replay, max_stored_bytes, notices)
        key = subject_key(event.subject.id)  # as the stream keys state: one per subject
        cause = Cause(event_id=event.event_id, type=event.type)
        try:
            # The record's bytes make its redelivery mark, as in the stream: an exported
            # line without the broker_time member the export appended (record_of_line),
            # so a replay of the export ends with the state the stream stored.
            result = step(replay.states.get(key), event, policy, cause, emitted_at=None,
                          received=received, raw=record_of_line(line))
        except InputError as exc:  # clock-skew: the stream dead-letters it
            bad = BadLine(number, exc.error_class, exc.message)
            replay.bad_lines.append(bad)
            yield bad
            continue
        replay.events += 1
        if result.changed:
            result = _keep(replay, key, result, event, policy, cause, max_stored_bytes,
                           received)
            _watch(deadlines, replay, key, event.tenant)
        yield from _published(replay, result, notices)
    if until is not None:
        yield from _ticks(deadlines, until, policy, replay, max_stored_bytes, notices)


def _moment(line: tuple[int, InputEvent, datetime | None, bytes]) -> datetime:
    """The time a parsed line is decided in order of: its broker time, else its ``at``."""
    _, event, received, _ = line
    return event.at if received is None else received


def outcomes(items: Iterable[Item]) -> dict[str, list[str]]:
    """Per event id, one line per decision it caused: action, request, targets, rule; and
    per notice among ``items`` (issue J): ``notice``, its kind, request and due time."""
    found: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, Decision):
            found.setdefault(item.cause.event_id, []).append(
                f"{item.action} {item.request_id or '-'} {','.join(item.targets)} "
                f"[{item.rule.id}]"
            )
        elif isinstance(item, Notice):
            found.setdefault(item.cause.event_id, []).append(
                f"notice {item.request_id} due {format_time(item.due_at)} [{item.kind}]")
    return found


def changed_events(before: Mapping[str, list[str]], after: Mapping[str, list[str]]
                   ) -> list[str]:
    """The event ids whose outcomes differ, in the order they first appear."""
    return [event_id for event_id in dict.fromkeys([*before, *after])
            if before.get(event_id) != after.get(event_id)]
