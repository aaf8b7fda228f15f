"""The audit chain as pure data: canonical encoding, entry hashes, checkpoints, verification.

No Redis, Kafka, clock or files here, so every rule of the evidence is unit-testable.

An entry of partition ``p`` is the decision record at Kafka ``offset`` with a gap-free
``seq`` (0, 1, 2, …), the previous entry's hash ``prev`` (:data:`GENESIS` for seq 0) and its
own ``hash``: SHA-256 over a length-prefixed encoding of the partition, seq, offset, record
key, decision id, decision bytes and ``prev`` (:func:`entry_hash`). Changing any stored byte,
removing, reordering or inserting an entry breaks a hash or a link. A checkpoint is a JSON
payload naming one chain head (partition, seq, offset, hash) and the previous checkpoint's
digest, signed with Ed25519 by the notary: a chain rewritten with fresh hashes, or cut short
behind a checkpoint, no longer matches what was signed.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import JitwatchError
from streams.audit.keyring import Keyring, parse_time

__all__ = [
    "CHECKPOINT_FORMAT",
    "ENTRY_FIELDS",
    "GENESIS",
    "AuditTamperError",
    "ChainEntry",
    "ChainVerifier",
    "Checkpoint",
    "Head",
    "Problem",
    "checkpoint_digest",
    "entry_digest",
    "entry_hash",
    "entry_hash_prefix",
    "entry_id",
]

GENESIS = "0" * 64
"""``prev`` of an entry with seq 0, and of a partition's first checkpoint."""
CHECKPOINT_FORMAT = "jitwatch.audit.checkpoint/v1"
ENTRY_FIELDS = (b"seq", b"offset", b"key", b"decision_id", b"decision", b"prev", b"hash")
"""The fields of every stream entry."""
_ENTRY_DOMAIN = b"jitwatch.audit.entry/v1"
_LENGTH = struct.Struct(">Q")
"""A part's length in the hashed encoding: 8 bytes, big-endian."""


class AuditTamperError(JitwatchError):
    """The audit trail in Redis contradicts itself or the decisions topic."""


def entry_id(offset: int) -> str:
    """Redis Stream id of the entry for a Kafka offset: stream order is topic order."""
    return f"0-{offset + 1}"


def entry_hash(partition: int, seq: int, offset: int, key: bytes, decision_id: bytes,
               decision: bytes, prev: str) -> str:
    """SHA-256 (hex) of an entry's canonical encoding: each part length-prefixed (8 bytes,
    big-endian), so no two different entries encode alike."""
    return entry_digest(entry_hash_prefix(partition), b"%d" % seq, b"%d" % offset, key,
                        decision_id, decision, prev.encode())


def entry_hash_prefix(partition: int) -> bytes:
    """The start of the encoding :func:`entry_hash` hashes, the same for every entry of a
    partition (for :func:`entry_digest`)."""
    part = b"%d" % partition
    return _ENTRY_DOMAIN + _LENGTH.pack(len(part)) + part


def entry_digest(prefix: bytes, seq: bytes, offset: bytes, key: bytes, decision_id: bytes,
                 decision: bytes, prev: bytes) -> str:
    """:func:`entry_hash` with the partition's :func:`entry_hash_prefix` and every part as
    bytes (seq and offset in decimal ASCII): the sink's form, one buffer hashed at once."""
    pack = _LENGTH.pack
    return hashlib.sha256(b"".join((
        prefix, pack(len(seq)), seq, pack(len(offset)), offset, pack(len(key)), key,
        pack(len(decision_id)), decision_id, pack(len(decision)), decision, pack(len(prev)),
        prev))).hexdigest()


@dataclass(frozen=True, slots=True)
class Head:
    """The newest entry of a chain (what the next entry links to)."""

    seq: int
    offset: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One stored entry, decoded from its stream fields."""

    partition: int
    stream_id: str
    seq: int
    offset: int
    key: bytes
    decision_id: bytes
    decision: bytes
    prev: str
    hash: str

    @classmethod
    def from_fields(cls, partition: int, stream_id: bytes | str,
                    fields: Mapping[bytes, bytes]) -> ChainEntry:
        """Decode stream fields; raises :class:`ValueError` naming a missing or bad field."""
        missing = [name.decode() for name in ENTRY_FIELDS if name not in fields]
        if missing:
            raise ValueError(f"fields missing: {', '.join(missing)}")
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        try:
            seq, offset = int(fields[b"seq"]), int(fields[b"offset"])
        except ValueError as exc:
            raise ValueError(f"seq/offset not integers: {exc}") from exc
        return cls(partition, sid, seq, offset, fields[b"key"], fields[b"decision_id"],
                   fields[b"decision"], fields[b"prev"].decode(errors="replace"),
                   fields[b"hash"].decode(errors="replace"))

    @classmethod
    def after(cls, head: Head | None, partition: int, offset: int, key: bytes,
              decision: bytes) -> ChainEntry:
        """The entry that links a record to ``head`` (None: the chain's first entry)."""
        seq, prev = (0, GENESIS) if head is None else (head.seq + 1, head.hash)
        decision_id = _decision_id_of(decision) or b""
        digest = entry_hash(partition, seq, offset, key, decision_id, decision, prev)
        return cls(partition, entry_id(offset), seq, offset, key, decision_id, decision, prev,
                   digest)

    @property
    def as_head(self) -> Head:
        """This entry as the head the next one links to."""
        return Head(self.seq, self.offset, self.hash)

    def to_fields(self) -> dict[bytes, bytes]:
        """The stream fields, as the sink stores them."""
        return {b"seq": b"%d" % self.seq, b"offset": b"%d" % self.offset, b"key": self.key,
                b"decision_id": self.decision_id, b"decision": self.decision,
                b"prev": self.prev.encode(), b"hash": self.hash.encode()}

    def computed_hash(self) -> str:
        """The hash this entry's content should carry."""
        return entry_hash(self.partition, self.seq, self.offset, self.key, self.decision_id,
                          self.decision, self.prev)


def checkpoint_digest(payload: bytes) -> str:
    """What the next checkpoint of the partition links to."""
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A notary's signed statement: partition ``partition``'s chain had head ``head`` at
    wall-clock ``at``; ``prev`` is the digest of the partition's previous checkpoint."""

    partition: int
    head: Head
    prev: str
    at: str
    key_id: str

    def payload(self) -> bytes:
        """The canonical bytes that are signed (sorted-key JSON)."""
        return orjson.dumps({
            "format": CHECKPOINT_FORMAT, "partition": self.partition, "seq": self.head.seq,
            "offset": self.head.offset, "hash": self.head.hash, "prev": self.prev,
            "at": self.at, "key_id": self.key_id,
        }, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_payload(cls, payload: bytes) -> Checkpoint:
        """Parse signed payload bytes; raises :class:`ValueError` when malformed."""
        try:
            data = orjson.loads(payload)
            if data["format"] != CHECKPOINT_FORMAT:
                raise ValueError(f"unknown format {data['format']!r}")
            return cls(int(data["partition"]),
                       Head(int(data["seq"]), int(data["offset"]), str(data["hash"])),
                       str(data["prev"]), str(data["at"]), str(data["key_id"]))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"malformed checkpoint payload: {exc}") from exc


Verdict = Literal["tampered", "incomplete", "unsigned"]
"""``unsigned``: no checkpoint, or none recent enough (issue I)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong with a chain: where (partition, seq, offset) and what."""

    verdict: Verdict
    partition: int
    what: str
    seq: int | None = None
    offset: int | None = None

    @property
    def located(self) -> str:
        """Where and what, without the verdict: ``partition 0 seq 4 offset 4: ...``."""
        where = f"partition {self.partition}"
        if self.seq is not None:
            where += f" seq {self.seq}"
        if self.offset is not None:
            where += f" offset {self.offset}"
        return f"{where}: {self.what}"

    def __str__(self) -> str:
        return f"{self.verdict.upper()}: {self.located}"


@dataclass
class ChainVerifier:
    """Checks one partition's chain entry by entry, against its signed checkpoints.

    Build it with the partition's checkpoints as stored (payload, signature) in stream
    order, :meth:`feed` every entry in stream order, then call :meth:`finish`. The first
    problem found is kept in :attr:`problem`; later input is ignored. ``public_key`` is the
    notary's :class:`~streams.audit.keyring.Keyring` (a bare key: a ring of that one key),
    None to check links and hashes only.

    Offsets follow each other without a gap: the decisions topic is written without
    transactions, so its offsets are contiguous and an entry whose offset is not its
    predecessor's plus one was skipped or invented.
    """

    partition: int
    public_key: Keyring | Ed25519PublicKey | None
    checkpoints: list[tuple[bytes, bytes]] = field(default_factory=list)
    expected_seq: int = 0
    prev_hash: str = GENESIS
    prev_offset: int = -1
    entries: int = 0
    problem: Problem | None = None
    _signed: dict[int, Checkpoint] = field(default_factory=dict)
    _last_signed_seq: int = -1
    signed: list[Checkpoint] = field(default_factory=list)
    """The valid checkpoints, oldest first."""

    def __post_init__(self) -> None:
        if isinstance(self.public_key, Ed25519PublicKey):
            self.public_key = Keyring.of(self.public_key)
        self.problem = self._check_checkpoints()

    def resume_after(self, head: Head) -> None:
        """Start from a known-good head instead of genesis (the notary checks only what
        is new since its last checkpoint)."""
        self.expected_seq, self.prev_hash, self.prev_offset = head.seq + 1, head.hash, head.offset

    @property
    def signed_through(self) -> int:
        """Highest seq covered by a valid checkpoint, -1 when none."""
        return self._last_signed_seq

    def _check_checkpoints(self) -> Problem | None:
        prev = GENESIS
        last_seq = -1
        last_at: tuple[datetime, str] | None = None
        for number, (payload, signature) in enumerate(self.checkpoints):
            where = f"checkpoint #{number}"
            try:
                checkpoint = Checkpoint.from_payload(payload)
            except ValueError as exc:
                return self._tampered(f"{where}: {exc}")
            bad = None if not isinstance(self.public_key, Keyring) else \
                self.public_key.check(checkpoint.key_id, checkpoint.at, payload, signature)
            if bad is not None:
                return self._tampered(f"{where} (seq {checkpoint.head.seq}): {bad}",
                                      checkpoint.head.seq)
            if checkpoint.partition != self.partition:
                return self._tampered(f"{where} belongs to partition {checkpoint.partition}")
            if checkpoint.prev != prev:
                return self._tampered(f"{where} (seq {checkpoint.head.seq}) does not link to "
                                      "the checkpoint before it: one was removed, changed "
                                      "or inserted", checkpoint.head.seq)
            if checkpoint.head.seq < last_seq:
                return self._tampered(f"{where} signs seq {checkpoint.head.seq}, behind the "
                                      f"previous checkpoint's seq {last_seq}",
                                      checkpoint.head.seq)
            # A checkpoint's time never goes back behind the one it links to (the notary
            # signs no earlier than its last): else a retired key, in its period only by a
            # backdated `at`, could sign on after a rotation.
            when = _time_or_none(checkpoint.at)
            if when is not None and last_at is not None and when < last_at[0]:
                return self._tampered(f"{where} (seq {checkpoint.head.seq}) was signed at "
                                      f"{checkpoint.at}, before checkpoint #{number - 1} it "
                                      f"links to ({last_at[1]}): backdated", checkpoint.head.seq)
            last_at = last_at if when is None else (when, checkpoint.at)
            prev, last_seq = checkpoint_digest(payload), checkpoint.head.seq
            self._signed[checkpoint.head.seq] = checkpoint
            self.signed.append(checkpoint)
        self._last_signed_seq = last_seq
        return None

    def _tampered(self, what: str, seq: int | None = None,
                  offset: int | None = None) -> Problem:
        return Problem("tampered", self.partition, what, seq, offset)

    def feed(self, stream_id: bytes | str, fields: Mapping[bytes, bytes]) -> Problem | None:
        """Check the next entry; returns (and keeps) the first problem."""
        if self.problem is not None:
            return self.problem
        self.problem = self._check(stream_id, fields)
        return self.problem

    def feed_all(self, entries: Iterable[tuple[bytes, Mapping[bytes, bytes]]]) -> Problem | None:
        """:meth:`feed` each entry of an ``XRANGE`` reply."""
        for stream_id, fields in entries:
            if self.feed(stream_id, fields) is not None:
                break
        return self.problem

    def _check(self, stream_id: bytes | str, fields: Mapping[bytes, bytes]) -> Problem | None:
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        try:
            entry = ChainEntry.from_fields(self.partition, sid, fields)
        except ValueError as exc:
            return self._tampered(f"entry {sid}: {exc}", self.expected_seq)
        seq, offset = entry.seq, entry.offset
        if sid != entry_id(offset):
            return self._tampered(f"stream id {sid} does not belong to offset {offset} (an "
                                  "entry was moved or inserted)", seq, offset)
        if seq != self.expected_seq:
            missing = "missing (deleted or never appended)" if seq > self.expected_seq else \
                "out of order or inserted"
            return self._tampered(f"expected seq {self.expected_seq} here, found seq {seq}: "
                                  f"an entry is {missing}", seq, offset)
        if offset <= self.prev_offset:
            return self._tampered(f"offset {offset} is not after the previous entry's "
                                  f"{self.prev_offset} (reordered)", seq, offset)
        if self.prev_offset >= 0 and offset != self.prev_offset + 1:
            gap = self.prev_offset + 1
            return self._tampered(f"offset {gap} is missing: the entry after offset "
                                  f"{self.prev_offset} is for offset {offset} (an offset was "
                                  "skipped, or an entry invented ahead)", seq, gap)
        if entry.prev != self.prev_hash:
            return self._tampered("prev does not equal the previous entry's hash (an entry "
                                  "before it was removed, changed or reordered)", seq, offset)
        if entry.computed_hash() != entry.hash:
            return self._tampered("hash does not match the entry's content (altered)",
                                  seq, offset)
        if _decision_id_of(entry.decision) not in (None, entry.decision_id):
            return self._tampered("decision_id field differs from the decision's own id",
                                  seq, offset)
        signed = self._signed.get(seq)
        if signed is not None and (signed.head.hash, signed.head.offset) != (entry.hash, offset):
            return self._tampered("differs from what the notary signed at this seq (the "
                                  "chain was rewritten)", seq, offset)
        self.expected_seq, self.prev_hash, self.prev_offset = seq + 1, entry.hash, offset
        self.entries += 1
        return None

    def finish(self) -> Problem | None:
        """After the last entry: a checkpoint beyond the chain's end means a cut tail."""
        if self.problem is None and self._last_signed_seq >= self.expected_seq:
            self.problem = self._tampered(
                f"chain ends at seq {self.expected_seq - 1} but a checkpoint signs seq "
                f"{self._last_signed_seq}: the tail was truncated", self.expected_seq)
        return self.problem

    @property
    def head(self) -> Head | None:
        """The last entry checked, None when there was none."""
        if self.expected_seq == 0:
            return None
        return Head(self.expected_seq - 1, self.prev_offset, self.prev_hash)


def _time_or_none(at: str) -> datetime | None:
    try:
        return parse_time(at)
    except ValueError:  # the keyring reports it when it checks signatures
        return None


def _decision_id_of(decision: bytes) -> bytes | None:
    try:
        value = orjson.loads(decision).get("decision_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value.encode() if isinstance(value, str) else None
