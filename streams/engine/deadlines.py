"""On-time expiry for the stream: the deadline index and the gate that lets a tick go.

faust timers cannot write tables, so the timer only *sends* a ``clock.tick`` command, keyed
by subject id, to the commands topic, which is co-partitioned with the inputs; the agent
that owns the subject's partition handles it in-stream like any event. A tick is sent once
the wall clock is ``grace`` past the deadline, so events stamped before the deadline have
been decided first (event time tracks wall time in live operation), and only once no
input of the subject's partition stamped before the deadline can still be waiting
(:meth:`PartitionClock.may_expire`); a tick that finds nothing left to end changes nothing,
so stale or duplicate ticks are harmless. The tick's bytes are
:func:`streams.engine.codec.encode_tick`; the stream and the file replay both decide a tick
through :func:`decide_tick`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from policy import Step, tick
from schemas._base import format_time
from schemas.errors import InputError
from schemas.policy import LoadedPolicy
from schemas.state import StoredSubject

__all__ = ["TICK_UNDECIDABLE", "DeadlineIndex", "GroupProgress", "Moments", "Offsets",
           "PartitionClock", "decide_tick"]

TICK_UNDECIDABLE = "tick-undecidable"
"""The error class of a tick whose expiries could not be decided (a dead letter)."""


def decide_tick(stored: StoredSubject, tenant: str, subject_id: str, at: datetime,
                policy: LoadedPolicy, *, emitted_at: datetime | None = None,
                coordinates: tuple[str, int, int] | None = None) -> Step:
    """Let event time reach ``at`` for one subject (:func:`policy.tick`), for the stream
    and the replay alike.

    An event that cannot be evaluated is denied; a tick has nothing to deny, so one that
    cannot be decided (an expiry whose lock would end past year 9999) fails as a whole and
    ends nothing: the stream dead-letters its command, the replay reports it, and the
    subject's next event meets the same failure and is denied (``evaluation-error``).

    Raises:
        InputError: ``tick-undecidable``, naming the subject, the tenant, the time and why.
    """
    try:
        return tick(stored, tenant, subject_id, at, policy, emitted_at=emitted_at,
                    coordinates=coordinates)
    except Exception as exc:  # any failure: errors are data here, a dead letter
        raise InputError(TICK_UNDECIDABLE,
                         f"expiry of subject {subject_id[:80]!r} (tenant {tenant!r}) at "
                         f"{format_time(at)} could not be decided ({type(exc).__name__}: "
                         f"{exc}); nothing ended") from exc

Offsets = Mapping[tuple[str, int], int | None]
"""Kafka offsets by (topic, partition); None where none is known (yet)."""

Moments = Mapping[tuple[str, int], datetime | None]
"""When the broker last reported each (topic, partition)'s end offset; None: never."""


@dataclass
class DeadlineIndex:
    """Earliest-first deadlines of the subjects this worker has seen or recovered.

    One entry per (subject, tenant) is current; older entries are skipped when popped.
    """

    _heap: list[tuple[datetime, bytes, str]] = field(default_factory=list)
    _current: dict[tuple[bytes, str], datetime] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._current)

    def set(self, key: bytes, tenant: str, deadline: datetime | None) -> None:
        """Record the subject's next deadline (None: nothing left to run out)."""
        if deadline is None:
            self._current.pop((key, tenant), None)
        elif self._current.get((key, tenant)) != deadline:
            self._current[(key, tenant)] = deadline
            heapq.heappush(self._heap, (deadline, key, tenant))

    def set_many(self, entries: Iterable[tuple[datetime, bytes, str]]) -> None:
        """:meth:`set` for each (deadline, key, tenant), ordering the heap once at the end
        rather than on every push (recovery indexes a whole table at once). The entries
        are in the heap's own order, so each is kept as it is."""
        current, heap = self._current, self._heap
        for entry in entries:
            deadline, key, tenant = entry
            if current.get((key, tenant)) != deadline:
                current[(key, tenant)] = deadline
                heap.append(entry)
        heapq.heapify(heap)

    def restore(self, key: bytes, tenant: str, deadline: datetime) -> None:
        """Put back a deadline taken by :meth:`due` and not handled, unless the subject got
        a new one meanwhile: that one comes from newer state and wins (putting the old one
        over it would lose it, as the old tick then ends nothing and sets nothing)."""
        if (key, tenant) not in self._current:
            self.set(key, tenant, deadline)

    def pop_due(self, until: datetime) -> tuple[datetime, bytes, str] | None:
        """Pop the earliest current deadline at or before ``until``, if any."""
        while self._heap and self._heap[0][0] <= until:
            deadline, key, tenant = heapq.heappop(self._heap)
            if self._current.get((key, tenant)) == deadline:
                del self._current[(key, tenant)]
                return deadline, key, tenant
        return None

    def due(self, until: datetime) -> list[tuple[datetime, bytes, str]]:
        """Pop every current deadline at or before ``until``, earliest first."""
        found = []
        while (entry := self.pop_due(until)) is not None:
            found.append(entry)
        return found


@dataclass
class PartitionClock:
    """How far each input topic's partition has been decided, to gate expiry ticks.

    A tick must not overtake input stamped before its deadline: after a takeover or a
    restart the backlog carries such events, and Kafka orders each topic on its own. A
    deadline is due on a partition once, for every input topic, either an event stamped at
    or after it has been decided there (the watermark) or the topic's partition is decided
    up to an end offset the broker reported at or after the deadline (caught up: wall time
    stands in for event time). End offsets come from the broker with the moment they were
    reported; this class keeps what was decided.

    An end offset reported before the deadline says nothing about records appended between
    that report and the deadline: a consumer fetches a partition again only once it has
    handed over what it fetched, and while another fetch is in flight to the broker (a long
    poll, up to 1.5 s under faust), so under load it decides up to an old end offset while
    the producer's later records, stamped before the deadline, wait unfetched (the kill -9
    fault scenario: a lock's tick decided before requests stamped 0.2 s before it).
    """

    watermark: dict[tuple[str, int], datetime] = field(default_factory=dict)
    decided_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """Next offset to decide per (input topic, partition)."""
    forwards: dict[tuple[str, int], deque[tuple[int, datetime | None]]] = field(
        default_factory=dict)
    """This worker's own forwards to the repartition topic not decided yet, as (offset, the
    original's broker time), in offset order: a fetch may not have reported them yet."""

    def expect(self, topic: str, partition: int, offset: int, at: datetime | None) -> None:
        """This worker forwarded a record stamped ``at`` (None: unknown) to
        ``topic``/``partition``, where it got ``offset``."""
        self.forwards.setdefault((topic, partition), deque()).append((offset, at))

    def forwarding(self, topic: str, partition: int, deadline: datetime) -> bool:
        """Whether a forward this worker made of a record stamped before ``deadline`` (or
        at an unknown time) is not decided yet on ``topic``/``partition``."""
        queue = self.forwards.get((topic, partition))
        if not queue:
            return False
        done = self.decided_offsets.get((topic, partition), 0)
        while queue and queue[0][0] < done:
            queue.popleft()
        return any(at is None or at < deadline for _, at in queue)

    def decided(self, topic: str, partition: int, offset: int, at: datetime | None) -> None:
        """The event at ``offset`` of ``topic``/``partition``, stamped ``at``, was decided;
        ``at`` is None for a record dead-lettered unread, which is done all the same."""
        where = (topic, partition)
        if at is not None and (where not in self.watermark or self.watermark[where] < at):
            self.watermark[where] = at
        self.decided_offsets[where] = max(offset + 1, self.decided_offsets.get(where, 0))

    def passed(self, topic: str, partition: int, deadline: datetime) -> bool:
        """Whether input stamped at or after ``deadline`` was decided on this topic."""
        mark = self.watermark.get((topic, partition))
        return mark is not None and deadline <= mark

    def caught_up(self, topic: str, partition: int, deadline: datetime,
                  end_offsets: Offsets, reported_at: Moments, committed: Offsets) -> bool:
        """Whether ``topic``/``partition`` is decided up to the end offset the consumer's
        last fetch reported, if that fetch was answered at or after ``deadline`` (an older
        end offset may lack records stamped before the deadline). Offsets not decided here
        yet (just assigned) count from the group's committed offset."""
        where = (topic, partition)
        end = end_offsets.get(where)
        if end is None:
            return False  # no fetch answered for it yet
        reported = reported_at.get(where)
        if reported is None or reported < deadline:
            return False  # records appended since that answer may be stamped before it
        if end == 0:
            return True  # nothing was ever written there
        done = self.decided_offsets.get(where)
        if done is None:
            done = committed.get(where)
        return done is not None and done >= end

    def may_expire(self, topics: Iterable[str], partition: int, deadline: datetime,
                   end_offsets: Offsets, committed: Offsets, reported_at: Moments) -> bool:
        """The tick gate: whether a deadline on ``partition`` may be ticked now, i.e. every
        input topic of the partition is past the deadline or decided to an end offset
        reported at or after it.

        ``end_offsets``, ``reported_at`` (when each end offset was reported) and
        ``committed`` are the consumer's view of the input partitions, passed in as plain
        data so the rule is tested without a broker.
        """
        return all(self.passed(topic, partition, deadline)
                   or self.caught_up(topic, partition, deadline, end_offsets, reported_at,
                                     committed)
                   for topic in topics)

    def may_expire_owned(self, inputs: Iterable[str], repartition: str, partition: int,
                         owned: Iterable[int], deadline: datetime, end_offsets: Offsets,
                         committed: Offsets, reported_at: Moments,
                         others_since: datetime | None = None) -> bool:
        """The tick gate with forwarding (issue H): a record of a subject owned by
        ``partition`` may still wait on any input partition (a producer with another
        partitioner put it there) until it is forwarded, so every ``owned`` partition of the
        ``inputs`` must be past the deadline, and ``partition`` of the ``repartition`` topic
        too: every forward this worker made of a record stamped before the deadline decided
        (:meth:`forwarding`), and every other forward (another worker's, or one made before
        this worker took its partitions), known to be in the topic by ``others_since``,
        decided: the partition past that moment (a forward's own broker time rises with its
        offsets, its original's does not) or decided to an end offset reported at or after
        it. Partitions another worker owns are not seen here: :meth:`may_expire_group`."""
        since = deadline if others_since is None else max(deadline, others_since)
        return (not self.forwarding(repartition, partition, deadline)
                and self.may_expire((repartition,), partition, since, end_offsets,
                                    committed, reported_at)
                and all(self.may_expire(inputs, other, deadline, end_offsets, committed,
                                        reported_at)
                        for other in {partition, *owned}))

    def may_expire_group(self, inputs: Iterable[str], repartition: str, partition: int,
                         owned: Iterable[int], partitions: int, deadline: datetime,
                         end_offsets: Offsets, committed: Offsets, reported_at: Moments,
                         progress: GroupProgress, assigned_at: datetime | None = None
                         ) -> bool:
        """The tick gate across workers (issue I): :meth:`may_expire_owned`, and first, for
        every input partition of the ``partitions`` this worker does not own, the group's
        committed offset at an end offset reported at or after the deadline
        (:meth:`GroupProgress.forwarded_by`): a worker forwards a misplaced record, and has
        the forward acknowledged, before it commits past it. Forwards of others are then
        waited for from the moment that commit was seen, or from ``assigned_at`` (when this
        worker took its partitions: their earlier owners forwarded before), if later."""
        owned = set(owned)
        inputs = tuple(inputs)
        elsewhere = frozenset((topic, number) for topic in inputs
                              for number in range(partitions) if number not in owned)
        forwarded_at = progress.forwarded_by(deadline, elsewhere)
        if forwarded_at is None:
            return False
        others_since = forwarded_at if assigned_at is None else max(forwarded_at, assigned_at)
        return self.may_expire_owned(inputs, repartition, partition, owned, deadline,
                                     end_offsets, committed, reported_at, others_since)


@dataclass
class GroupProgress:
    """What the whole consumer group committed on input partitions, as the worker read it
    from the broker on its timer passes (end offsets, then committed offsets), kept for the
    expiry gate across workers (:meth:`PartitionClock.may_expire_group`).

    A deadline needs an end offset reported at or after it, and a committed offset seen
    later that reaches it; a pass under load rarely sees both, so the last ``keep`` passes
    are kept. Dropping older ones only makes the gate wait for a later pair.
    """

    keep: int = 64
    _ends: deque[tuple[datetime, dict[tuple[str, int], int]]] = field(default_factory=deque)
    _commits: deque[tuple[datetime, Offsets]] = field(default_factory=deque)
    _memo: dict[tuple[int, frozenset[tuple[str, int]]], datetime | None] = field(
        default_factory=dict)

    def observe(self, ends_at: datetime, ends: Mapping[tuple[str, int], int],
                committed_at: datetime, committed: Offsets) -> None:
        """One pass's reading: ``ends`` as asked of the broker at ``ends_at`` (so they
        hold every record appended before it), and the group's ``committed`` offsets as
        answered by ``committed_at`` (None: nothing committed)."""
        self._ends.append((ends_at, dict(ends)))
        self._commits.append((committed_at, dict(committed)))
        while len(self._ends) > self.keep:
            self._ends.popleft()
            self._commits.popleft()
        self._memo.clear()  # answers are cached per pass, not per deadline

    def forwarded_by(self, deadline: datetime,
                     where: frozenset[tuple[str, int]]) -> datetime | None:
        """When the group was seen to have committed, on every partition of ``where``,
        every record appended before ``deadline`` (so forwarded any of them that was
        misplaced); ``deadline`` itself when ``where`` is empty; None: not seen yet."""
        if not where:
            return deadline
        first = next((number for number, (at, _) in enumerate(self._ends) if at >= deadline),
                     None)
        if first is None:
            return None
        if (first, where) not in self._memo:
            ends = self._ends[first][1]
            self._memo[(first, where)] = next(
                (at for at, committed in self._commits
                 if all(_reached(committed.get(spot), ends.get(spot)) for spot in where)),
                None)
        return self._memo[(first, where)]


def _reached(committed: int | None, end: int | None) -> bool:
    # An end offset not read says nothing; an empty partition needs no commit.
    return end is not None and (end == 0 or (committed is not None and committed >= end))
