"""``jitwatch audit verify``: check the chains in Redis (or an export file) end to end.

Per partition: every checkpoint's signature (by the key its id names in the notary's
keyring) and link, every entry's hash, link, sequence number, contiguous offset and place,
that each checkpoint is in the chain, that Redis removed no entry it was given, that a
recent checkpoint signs the chain (:class:`~streams.audit.against.UnsignedLimits`), and
optionally that the chain holds exactly the decisions topic's records and its checkpoints
are the ones anchored in Kafka (``--against-kafka``). Exit code 0 when all is intact
(entries before the topic's retention are fine when a checkpoint covers them), 1 when
something was tampered with (the first bad entry is named), 2 when the evidence is
incomplete (the sink is behind the topic, entries left its retention unsigned) or unsigned.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import JitwatchError
from streams.audit.against import (
    UnsignedLimits,
    against_anchor,
    against_topic,
    removed_entries,
    unsigned_problem,
)
from streams.audit.chain import ChainEntry, ChainVerifier, Problem, Verdict
from streams.audit.keyring import Keyring, parse_time
from streams.audit.keys import (
    StreamEntry,
    chains_outside,
    checkpoint_fields,
    checkpoint_key,
    read_stream,
    stream_key,
)
from streams.audit.query import EXPORT_FORMAT
from streams.audit.topics import content_digest, kafka_options, read_anchor
from streams.settings import KafkaSettings

__all__ = ["ExportError", "PartitionReport", "VerifyReport", "kafka_consumer_options",
           "verify_export", "verify_redis"]


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


@dataclass
class PartitionReport:
    """What was checked in one partition's chain."""

    partition: int
    entries: int = 0
    checkpoints: int = 0
    signed_through: int = -1
    problem: Problem | None = None
    compared_with_kafka: int | None = None
    notes: list[str] = field(default_factory=list)
    """What is fine but worth saying (entries before retention, unsigned ones allowed)."""

    def line(self) -> str:
        """One line for the auditor."""
        if self.problem is not None:
            return str(self.problem)
        signed = (f"signed through seq {self.signed_through}" if self.signed_through >= 0
                  else "nothing signed yet" if self.entries else "empty")
        text = (f"ok: partition {self.partition}: {_count(self.entries, 'entry', 'entries')}, "
                f"{_count(self.checkpoints, 'checkpoint', 'checkpoints')}, {signed}")
        unsigned = self.entries - 1 - self.signed_through
        if unsigned > 0:
            text += f" ({unsigned} newer entries not signed yet)"
        if self.compared_with_kafka is not None:
            text += f", equal to the topic's {self.compared_with_kafka} records"
        return "; ".join([text, *self.notes])


@dataclass
class VerifyReport:
    """All partitions' results; :attr:`exit_code` is the command's."""

    partitions: list[PartitionReport] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        """The first problem of each bad partition."""
        return [p.problem for p in self.partitions if p.problem is not None]

    @property
    def exit_code(self) -> int:
        """0 intact, 1 tampered, 2 incomplete or unsigned."""
        verdicts = {problem.verdict for problem in self.problems}
        return 1 if "tampered" in verdicts else 2 if verdicts else 0


async def _verify_partition(verifier: ChainVerifier, report: PartitionReport,
                            pages: AsyncIterator[list[StreamEntry]],
                            keep: list[tuple[int, bytes]] | None) -> None:
    """Feed the chain to the verifier; keep (offset, content digest) for the Kafka check."""
    async for page in pages:
        if verifier.feed_all(page) is not None:
            break
        if keep is not None:
            for _, fields in page:
                keep.append((int(fields[b"offset"]), content_digest(fields[b"key"],
                                                                    fields[b"decision"])))
    verifier.finish()
    report.entries, report.problem = verifier.entries, verifier.problem
    report.signed_through = verifier.signed_through


async def verify_redis(client: aioredis.Redis, prefix: str, partitions: int,
                       public_key: Keyring | Ed25519PublicKey,
                       kafka: dict[str, Any] | None = None, topic: str | None = None,
                       unsigned: UnsignedLimits | None = None,
                       anchor_topic: str | None = None) -> VerifyReport:
    """Verify every partition's chain in Redis; with ``kafka`` and ``topic``, also that each
    chain holds exactly the topic partition's records, in order, and with ``anchor_topic``
    that its checkpoints are the anchored ones. ``kafka`` are the consumer's keyword
    arguments (:func:`kafka_consumer_options`); ``unsigned`` the limits on what may be
    unsigned (None: any)."""
    report = VerifyReport()
    for partition in range(partitions):
        # The anchor before Redis (see against_anchor): a checkpoint signed meanwhile is in
        # Redis and not yet read from the anchor, never the other way round.
        anchored = await read_anchor(kafka, anchor_topic, partition, prefix) \
            if kafka and anchor_topic else None
        checkpoints = [checkpoint_fields(fields)
                       async for page in read_stream(client, checkpoint_key(prefix, partition))
                       for _, fields in page]
        part = PartitionReport(partition, checkpoints=len(checkpoints))
        verifier = ChainVerifier(partition, public_key, checkpoints)
        keep: list[tuple[int, bytes]] | None = [] if kafka else None
        await _verify_partition(verifier, part, read_stream(client, stream_key(prefix,
                                                                               partition)),
                                keep)
        for key, what in ((stream_key(prefix, partition), "entries"),
                          (checkpoint_key(prefix, partition), "checkpoints")):
            part.problem = part.problem or await removed_entries(client, key, partition, what)
        if part.problem is None and keep is not None and kafka and topic:
            part.problem, part.compared_with_kafka, note = await against_topic(
                kafka, topic, partition, keep, verifier.signed)
            part.notes += [note] if note else []
        if _not_tampered(part.problem) and anchored is not None and anchor_topic:
            # Also when the chain only looks behind the topic: a tail cut back to a
            # checkpoint, the checkpoints after it dropped, is tampering, not a sink behind.
            part.problem = _worse(part.problem, against_anchor(anchor_topic, partition,
                                                               anchored, checkpoints))
        if part.problem is None and unsigned is not None:
            part.problem = unsigned_problem(partition, part.entries, verifier.signed, unsigned)
        report.partitions.append(part)
    for key in await chains_outside(client, prefix, partitions):
        number = int(key[len(prefix) + 2:])
        report.partitions.append(PartitionReport(number, problem=Problem(
            "tampered", number, f"{key} is a chain of a partition the decisions topic does "
            f"not have (0 to {partitions - 1}): written by someone else, e.g. with the "
            "sink's Redis user (or JITWATCH_TOPIC_PARTITIONS is below the topic's)")))
    return report


def _not_tampered(problem: Problem | None) -> bool:
    return problem is None or problem.verdict != "tampered"


def _worse(first: Problem | None, then: Problem | None) -> Problem | None:
    """The problem to report: tampering over the rest, else the first found."""
    return then if then is not None and (first is None or then.verdict == "tampered") \
        else first


def kafka_consumer_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The ``kafka`` argument of :func:`verify_redis`: the bootstrap servers and the same
    SASL/TLS options as every other jitwatch client (``JITWATCH_KAFKA_*``). The reader
    assigns partitions itself and commits nothing, so a principal that may read the topic
    without a consumer group (the SIEM's) is enough."""
    return kafka_options(kafka)


class ExportError(JitwatchError):
    """A file that cannot be verified as an export: not one, cut before its header, or
    altered in its structure. ``verdict`` is what ``jitwatch audit verify`` reports."""

    def __init__(self, verdict: Verdict, message: str) -> None:
        super().__init__(message)
        self.verdict: Verdict = verdict


def _export_pages(lines: Iterable[bytes]) -> Iterator[tuple[int, str, Any]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            yield number, str(record["kind"]), record
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ExportError("tampered", f"line {number}: not an export record "
                              f"({exc.__class__.__name__}: {exc})") from exc


def _bytes_field(record: dict[str, Any], name: str) -> bytes:
    if f"{name}_b64" in record:
        return base64.b64decode(record[f"{name}_b64"])
    return str(record[name]).encode()


def _export_header(pages: Iterator[tuple[int, str, Any]]) -> tuple[list[int], str]:
    """The partitions the export's first record lists and when it was exported;
    :class:`ExportError` when the first record is not an export header of this version."""
    try:
        first = next(pages, None)
    except ExportError as exc:
        raise ExportError("incomplete", f"{exc}: not an export file") from exc
    if first is None:
        raise ExportError("incomplete", "the file holds no export header: it is empty, or "
                          "was cut before its first line (export again)")
    number, kind, header = first
    if kind != "export":
        raise ExportError("incomplete", f"line {number}: the first record is a {kind!r}, not "
                          "the export header: not an export file, or cut at its start")
    if header.get("format") != EXPORT_FORMAT:
        raise ExportError("incomplete", f"export format {header.get('format')!r} is not "
                          f"{EXPORT_FORMAT!r}: export again with this version")
    try:
        return ([int(partition) for partition in header["partitions"]],
                str(header.get("exported_at")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError("tampered", f"line {number}: the header's partitions are "
                          f"unreadable ({exc})") from exc


def _against_end(part: PartitionReport, head: str, end: dict[str, Any]) -> Problem | None:
    """Whether a partition's part of the file is what the export's end record says it
    wrote (the end record is not signed: it catches a cut or pruned file, while the signed
    checkpoints catch a forged one)."""
    written = end.get("partitions", {}).get(str(part.partition))
    if not isinstance(written, dict):
        return Problem("tampered", part.partition, "the export's end record does not list "
                       "this partition")
    held = {"entries": part.entries, "checkpoints": part.checkpoints,
            "head": head if part.entries else None}
    if {name: written.get(name) for name in held} != held:
        return Problem("tampered", part.partition,
                       f"the export's end record says {written.get('entries')} entries and "
                       f"{written.get('checkpoints')} checkpoints (head "
                       f"{str(written.get('head'))[:16]}), the file holds {part.entries} and "
                       f"{part.checkpoints} (head {str(held['head'])[:16]}): records were "
                       "removed from or added to the file")
    return None


def verify_export(lines: Iterable[bytes], public_key: Keyring | Ed25519PublicKey,
                  unsigned: UnsignedLimits | None = None) -> VerifyReport:
    """Verify an export file offline (see :func:`streams.audit.query.export`): every
    partition its header lists, each against its checkpoints, the export's end record and
    ``unsigned`` (None: any), whose age limit counts to the export's time. Raises
    :class:`ExportError` for a file that is not a whole export of this version."""
    report = VerifyReport()
    verifiers: dict[int, tuple[ChainVerifier, PartitionReport]] = {}
    checkpoints: dict[int, list[tuple[bytes, bytes]]] = {}
    pages = _export_pages(lines)
    listed, exported_at = _export_header(pages)
    if unsigned is not None:
        # An export carries no anchor: what a rewrite of the chain that dropped its
        # checkpoints leaves is a chain unsigned, as Redis' verify would call it.
        with contextlib.suppress(ValueError):  # a header without its time: as of now
            unsigned = replace(unsigned, now=parse_time(exported_at))
    places = {partition: place for place, partition in enumerate(listed)}
    end: dict[str, Any] | None = None
    last_seen = -1  # the header's index of the last partition with records
    for number, kind, record in pages:
        if end is not None:
            raise ExportError("tampered", f"line {number}: a record after the end record")
        if kind == "end":
            end = record
            continue
        partition = int(record.get("partition", -1))
        if partition not in places:
            raise ExportError("tampered", f"line {number}: partition {partition} is not one "
                              f"the header lists ({', '.join(map(str, listed))})")
        last_seen = max(last_seen, places[partition])
        if kind == "checkpoint":
            if partition in verifiers:
                raise ExportError("tampered", f"line {number}: checkpoint of partition "
                                  f"{partition} after its entries")
            checkpoints.setdefault(partition, []).append(
                (str(record["payload"]).encode(), str(record["sig"]).encode()))
        elif kind == "entry":
            if partition not in verifiers:
                signed = checkpoints.get(partition, [])
                verifiers[partition] = (ChainVerifier(partition, public_key, signed),
                                        PartitionReport(partition, checkpoints=len(signed)))
            entry = ChainEntry(partition, str(record["id"]), int(record["seq"]),
                               int(record["offset"]), _bytes_field(record, "key"),
                               str(record["decision_id"]).encode(),
                               _bytes_field(record, "decision"), str(record["prev"]),
                               str(record["hash"]))
            verifiers[partition][0].feed(entry.stream_id, entry.to_fields())
    for place, partition in enumerate(listed):
        if partition not in verifiers:  # no entries: empty, or all cut off
            signed = checkpoints.get(partition, [])
            verifiers[partition] = (ChainVerifier(partition, public_key, signed),
                                    PartitionReport(partition, checkpoints=len(signed)))
        verifier, part = verifiers[partition]
        verifier.finish()
        part.entries, part.problem = verifier.entries, verifier.problem
        part.signed_through = verifier.signed_through
        if part.problem is None and end is not None:
            part.problem = _against_end(part, verifier.prev_hash, end)
            if part.problem is None and unsigned is not None:
                part.problem = unsigned_problem(partition, part.entries, verifier.signed,
                                                unsigned)
        elif part.problem is None and place >= last_seen:
            # Partitions are written in the header's order: the file was cut in the last
            # one it reaches, and those after it are missing.
            part.problem = Problem("incomplete", partition, "the file ends before the "
                                   "export's end record: it was cut short here, so entries "
                                   "may be missing (export again)")
        report.partitions.append(part)
    return report
