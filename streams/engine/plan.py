"""Plan a batch of raw input records: no faust, no I/O, testable without a broker.

The worker reads the stored value of every record's key, hands records and values in, and
gets back what to publish and what to store; it sends and stores, in that order, so a crash
in between re-decides the batch with the same decision ids rather than losing verdicts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from policy import next_deadline, step
from schemas._base import trusted_model
from schemas.decisions import Cause
from schemas.errors import InputError
from schemas.events import ClockTick, InputEvent
from schemas.policy import LoadedPolicy
from schemas.state import MAX_STORED_BYTES, StoredSubject
from streams.engine.bounds import fit
from streams.engine.codec import (
    canonical_key,
    dead_letter_headers,
    decode_command,
    decode_event,
    decode_stored,
    encode_notice,
    encode_stored,
    subject_key,
)
from streams.engine.dead_letters import dead_letter_record
from streams.engine.deadlines import decide_tick
from streams.engine.records import LOG_APPEND_TIME, Outbound, Record
from streams.engine.repartition import Repartition
from streams.engine.topics import InputTopics

__all__ = ["CLOCK_UNTRUSTED", "LOG_APPEND_TIME", "BatchPlan", "Outbound", "Record",
           "Repartition", "Write", "plan_batch", "stored_keys"]

log = logging.getLogger(__name__)

_CAUSE_FIELDS = frozenset(Cause.model_fields)

CLOCK_UNTRUSTED = "clock-untrusted"
"""The dead-letter error class of an input record without a broker (LogAppendTime) time."""


@dataclass(frozen=True, slots=True)
class Write:
    """A table value to store for ``key``, on the partition of input record ``source``;
    ``value`` None deletes the key (a subject with no tenant state left)."""

    key: bytes
    value: bytes | None
    source: int


@dataclass(slots=True)
class BatchPlan:
    """Everything a batch produces, in input order."""

    outbound: list[Outbound] = field(default_factory=list)
    writes: dict[bytes, Write] = field(default_factory=dict)
    """The last value per key: earlier values of a key in the same batch need no write."""
    deadlines: dict[tuple[bytes, str], datetime | None] = field(default_factory=dict)
    """Each changed (subject, tenant)'s next deadline, for the expiry timer."""
    decided: list[tuple[str, int, int, datetime | None]] = field(default_factory=list)
    """(topic, partition, offset, at) of every input decided or dead-lettered (``at`` None
    when unreadable), for the expiry gate."""
    decisions: int = 0
    notices: int = 0
    dead_letters: int = 0
    forwarded: int = 0
    """Records forwarded to their subject's partition (:mod:`streams.engine.repartition`)."""


def stored_keys(records: Iterable[Record]) -> dict[tuple[int, bytes], int]:
    """The (partition, key) pairs whose stored values :func:`plan_batch` needs, each with
    the index of its first record.

    A record is decided only when its key names its subject (anything else is a dead
    letter), and its state is read on its own partition under the canonical key
    (:func:`streams.engine.codec.subject_key`), so these are all the values the batch can
    read. A tick reads the key exactly as it was stored, so both forms are listed where
    they differ.
    """
    first: dict[tuple[int, bytes], int] = {}
    for index, record in enumerate(records):
        if record.key:
            first.setdefault((record.partition, record.key), index)
            canonical = canonical_key(record.key)
            if canonical is not None:
                first.setdefault((record.partition, canonical), index)
    return first


def plan_batch(
    records: Sequence[Record],
    stored_values: Mapping[tuple[int, bytes], bytes | Exception | None],
    policy: LoadedPolicy,
    *,
    input_topics: InputTopics,
    decisions_topic: str,
    deadletter_topic: str,
    max_event_bytes: int,
    now: Callable[[], datetime],
    commands_topic: str | None = None,
    require_broker_time: bool = False,
    max_stored_bytes: int = MAX_STORED_BYTES,
    repartition: Repartition | None = None,
    notices_topic: str | None = None,
    max_record_bytes: int | None = None,
) -> BatchPlan:
    """Decide every record of a batch, in trusted-time order (issue H).

    An input record is decided at its broker time, the LogAppendTime Kafka stamped it with
    (``Record.timestamp``), never at its producer's ``at`` (see :mod:`policy.rules.clock`).
    With ``require_broker_time`` (the worker) an input record without one (CreateTime, no
    timestamp) is a dead letter, ``clock-untrusted``; without it (tests, tools) such a
    record is decided at its ``at``. Kafka orders each topic, not requests against sessions
    against ticks; within a batch the decodable records are decided in order of broker time
    (a tick at its deadline; stable, so one topic's order stands on ties). LogAppendTime
    rises with each partition's offsets, so this is arrival order per partition and the
    decisions do not depend on where batches are cut; a replay of the same lines with their
    ``broker_time`` decides the same.
    ``stored_values`` holds the stored value of each (partition, key) of
    :func:`stored_keys` as of before the batch (missing or None: nothing stored; an
    exception: the read failed, and each record that needs the value is a dead letter with
    that error, as any other failure of one record). Later records of the same key see the
    earlier ones' results. Any failure of one record sends that record to the dead letter
    topic and never yields an approve, and so does an event whose type belongs on another
    input topic than the one it came on (``input_topics``: see :mod:`streams.engine.topics`).
    A new value longer than ``max_stored_bytes`` is never stored: the event that made it
    gets a ``deny`` (state-limit) and a dead letter (``state-oversized``) and its subject
    keeps its value, while the rest of the batch goes on (:mod:`streams.engine.bounds`).
    A subject's state is keyed by its canonical id (:func:`streams.engine.codec.subject_key`).
    With ``repartition`` (the worker) a record on another partition than its subject's is
    not decided but forwarded (an :class:`Outbound` to the repartition topic), and a record
    of the repartition topic is decided as the original it stands for: its topic binding,
    broker time and ``cause`` coordinates are the original's
    (:mod:`streams.engine.repartition`).
    Notices (issue J) go to ``notices_topic`` after the decisions of the same record, keyed
    by subject like them (none is sent without one: tests and tools that do not ask).
    Every dead letter is a record a producer accepts: one of a record with neither key nor
    value, or one over ``max_record_bytes`` (the worker's
    :func:`~streams.engine.dead_letters.dead_letter_limit`; None: no limit), carries an
    empty value and a header that says why
    (:func:`streams.engine.dead_letters.dead_letter_record`).
    """
    plan = BatchPlan()
    dead = _DeadLetters(deadletter_topic, max_record_bytes)
    pending: dict[bytes, StoredSubject] = {}
    decoded: list[tuple[int, InputEvent | ClockTick, datetime | None, Record]] = []
    for index, record in enumerate(records):
        origin = record
        try:
            if record.topic == commands_topic:
                decoded.append((index, decode_command(record.key, record.value), None, record))
                continue
            if repartition is not None:
                origin = repartition.origin(record)
            received = _broker_time(origin, require_broker_time)
            checked = input_topics.check(
                decode_event(record.key, record.value, max_event_bytes), origin.topic)
            forward = None if repartition is None else repartition.route(
                record, origin, subject_key(checked.subject.id), index)
            if forward is None:
                decoded.append((index, checked, received, origin))
                continue
            plan.outbound.append(forward)
            plan.forwarded += 1
            # Done with on this partition: LogAppendTime rises with its offsets, so its
            # input is past ``received`` too.
            plan.decided.append((record.topic, record.partition, record.offset, received))
        except InputError as exc:
            _dead_letter(plan, index, record, dead, exc.error_class, exc.message,
                         origin=origin)
        except Exception as exc:  # one bad record must not stop the batch
            log.exception("unexpected failure decoding %s[%d]@%d", record.topic,
                          record.partition, record.offset)
            _dead_letter(plan, index, record, dead, type(exc).__name__, str(exc),
                         origin=origin)
    decoded.sort(key=lambda item: item[1].at if item[2] is None else item[2])
    for index, event, received, origin in decoded:
        record = records[index]
        try:
            # A tick names the key exactly as stored (values of subjects stored before keys
            # were canonical keep theirs, and their grants still end on time).
            key = (event.subject.id.encode("utf-8") if isinstance(event, ClockTick)
                   else subject_key(event.subject.id))
            plan.decided.append((record.topic, record.partition, record.offset,
                                 _progress_time(record, origin, event.at, received)))
            read: bytes | None = None  # the bytes stored, when read from the table
            if key in pending:
                stored: StoredSubject | None = pending[key]
            else:
                value = stored_values.get((record.partition, key))
                if isinstance(value, Exception):
                    raise value
                stored = decode_stored(value)
                read = value
            # Unvalidated: a validated event's id and type, and the record's typed
            # coordinates (validating them again cost about 2.5 µs per event).
            cause = trusted_model(Cause, {
                "event_id": event.event_id,
                "type": event.type,
                "topic": origin.topic,
                "partition": origin.partition,
                "offset": origin.offset,
            }, set(_CAUSE_FIELDS))
            emitted = now()
            if isinstance(event, ClockTick):
                if stored is None:
                    continue  # nothing was ever stored for this subject: nothing to end
                result = decide_tick(stored, event.tenant, event.subject.id, event.at, policy,
                                     emitted_at=emitted, coordinates=(
                                         record.topic, record.partition, record.offset))
            else:
                result = step(stored, event, policy, cause, emitted_at=emitted,
                              received=received, raw=record.value)
            fitted = fit(result, stored, event, policy, cause, max_stored_bytes, emitted,
                         received) if result.changed else None
        except InputError as exc:
            _dead_letter(plan, index, record, dead, exc.error_class, exc.message,
                         origin=origin)
            continue
        except Exception as exc:
            log.exception("unexpected failure deciding %s[%d]@%d", record.topic,
                          record.partition, record.offset)
            _dead_letter(plan, index, record, dead, type(exc).__name__, str(exc),
                         origin=origin)
            continue
        if fitted is not None and fitted.oversized is None:
            result = fitted.step
            pending[key] = result.stored
            if fitted.value is not None or stored is not None or key in plan.writes:
                # (nothing to delete where nothing was stored)
                plan.writes[key] = Write(key=key, value=fitted.value, source=index)
            state = result.stored.tenants.get(event.tenant)
            plan.deadlines[(key, event.tenant)] = (
                next_deadline(state) if state is not None else None)
        elif fitted is not None:
            result = fitted.step  # refused: the subject keeps its value
        elif stored is not None and key not in plan.writes:
            # Nothing changed: a redelivery, or a tick with nothing left to end. Store the
            # value again all the same: after a kill -9 the local store may hold a value
            # whose changelog write was lost, and only a new write puts it back there for
            # the next owner of the partition. The very bytes read, not encoded again.
            again = read if read is not None else encode_stored(stored)
            if len(again) <= max_stored_bytes:  # one stored before the limit is not resent
                plan.writes[key] = Write(key=key, value=again, source=index)
        for encoded in result.encoded:
            plan.outbound.append(Outbound(decisions_topic, key, encoded, source=index))
        plan.decisions += len(result.encoded)
        if notices_topic is not None:
            for notice in result.notices:
                plan.outbound.append(
                    Outbound(notices_topic, key, encode_notice(notice), source=index))
            plan.notices += len(result.notices)
        if fitted is not None and fitted.oversized is not None:
            log.warning("state of %r too large to store: %s", key[:80], fitted.oversized)
            _dead_letter(plan, index, record, dead, "state-oversized",
                         fitted.oversized, decided=False, origin=origin)
    return plan


def _progress_time(record: Record, origin: Record, at: datetime,
                   received: datetime | None) -> datetime | None:
    """How far ``record``'s partition is decided in time, for the tick gate
    (:meth:`streams.engine.deadlines.PartitionClock.decided`): the time it is decided at,
    except for a forwarded record, whose original's time does not rise with the
    repartition topic's offsets (forwards from several partitions and workers interleave):
    there the time the broker appended the forward itself (None when it has none)."""
    if origin is record:
        return at if received is None else received
    if record.timestamp_type == LOG_APPEND_TIME and record.timestamp is not None:
        return datetime.fromtimestamp(record.timestamp, UTC)
    return None


def _broker_time(record: Record, required: bool) -> datetime | None:
    """The time the broker appended ``record``; None when there is none and none is
    required.

    Raises:
        InputError: ``clock-untrusted`` for a CreateTime (producer-stamped) record, or one
            without a timestamp when one is required.
    """
    if record.timestamp_type == LOG_APPEND_TIME and record.timestamp is not None:
        return datetime.fromtimestamp(record.timestamp, UTC)
    if not required and record.timestamp_type is None:
        return None
    raise InputError(CLOCK_UNTRUSTED,
                     f"record of {record.topic} has no broker time (timestamp type "
                     f"{record.timestamp_type}, LogAppendTime is {LOG_APPEND_TIME}); set "
                     f"message.timestamp.type=LogAppendTime on topic {record.topic}")


@dataclass(frozen=True, slots=True)
class _DeadLetters:
    """Where dead letters go, and the largest record the producer sends there."""

    topic: str
    max_bytes: int | None


def _dead_letter(
    plan: BatchPlan, index: int, record: Record, to: _DeadLetters, error_class: str,
    message: str, *, decided: bool = True, origin: Record | None = None,
) -> None:
    # Named by the input record a producer wrote: a forwarded one's original coordinates.
    source = record if origin is None else origin
    headers = dead_letter_headers(
        source.topic, source.partition, source.offset, error_class, message
    )
    key, value = dead_letter_record(record.key, record.value, headers, to.max_bytes)
    plan.outbound.append(Outbound(to.topic, key, value, headers, source=index))
    plan.dead_letters += 1
    # Done with, too: a partition whose last record is a dead letter is still decided to
    # its end, or ticks due after its last good event would wait for ever.
    if decided:
        plan.decided.append((record.topic, record.partition, record.offset, None))
