"""Decisions read back from what jitwatch wrote: the decisions topic's values, a decisions
JSONL file (``simulate --format jsonl``, ``tail --json``) or an audit export (``jitwatch
audit export``). Shared by ``jitwatch report`` and ``jitwatch siem``: both read any of them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.decisions import DECISION_SCHEMA, Decision
from schemas.policy_load import PolicyLoadRecord, is_policy_load

__all__ = ["UnreadableError", "read_record", "read_records"]


class UnreadableError(ValueError):
    """A line that is neither a decision, a policy-load record nor an export record."""


def _unwrap(record: Any) -> Any:
    """The decision an audit export's entry holds, else ``record`` itself; ``None`` for an
    export's header, checkpoint and end records, which hold no decision."""
    if not isinstance(record, dict) or "kind" not in record:
        return record
    if record["kind"] != "entry":
        return None
    if "decision_b64" in record:
        return orjson.loads(base64.b64decode(record["decision_b64"]))
    return orjson.loads(record["decision"])


def read_record(value: bytes) -> Decision | PolicyLoadRecord | None:
    """One decision or policy-load record from ``value`` (``None``: a line that holds
    neither, such as a blank line or an export's header).

    Raises:
        UnreadableError: not JSON, or not a record of the contract.
    """
    if not value.strip():
        return None
    try:
        record = _unwrap(orjson.loads(value))
        if record is None:
            return None
        if is_policy_load(record):
            return PolicyLoadRecord.model_validate(record)
        if isinstance(record, dict) and record.get("schema", DECISION_SCHEMA) == DECISION_SCHEMA:
            return Decision.model_validate(record)
    except (orjson.JSONDecodeError, ValidationError, KeyError, TypeError, ValueError) as exc:
        raise UnreadableError(f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc
    raise UnreadableError("not a jit.decision/v1 nor a jit.policy-load/v1 record")


def read_records(lines: Iterable[bytes]) -> Iterator[Decision | PolicyLoadRecord | UnreadableError]:
    """Each line's record, in order; an unreadable line is yielded as its error (with its
    line number) so a caller can count and report it without stopping."""
    for number, line in enumerate(lines, 1):
        try:
            record = read_record(line)
        except UnreadableError as exc:
            yield UnreadableError(f"line {number}: {exc}")
            continue
        if record is not None:
            yield record
