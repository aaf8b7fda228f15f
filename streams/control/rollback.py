"""Policy rollback protection (issue H, finding 10): with signers configured, a policy may
replace the one in force only with a greater ``version``, unless an operator signed a
rollback from exactly the version in force.

**Version order.** A version is read as a sequence of parts: runs of digits (compared as
numbers) and runs of letters (compared as text), split at ``.``, ``-``, ``_``, ``+`` and
wherever digits meet letters: ``2026-11-23.3`` is (2026, 11, 23, 3), ``auth-v2`` is
("auth", "v", 2). Two versions compare part by part; a version that is a prefix of the
other is smaller (``2026-12-06`` < ``2026-12-06.1``). They *cannot be ordered* when, at the
first place they differ, one has text and the other a number or both have different text
(``auth-v1`` against ``2026-12-06.1``), or when a version has no numeric part at all. With
signing required such a version is refused (it could never be shown to increase); without
signers nothing is compared.

**Signed rollback.** ``<policy>.sig`` may carry ``"rollback_from": VERSION``. Its signature
is then over :func:`rollback_message` (not over the file's bytes), so the field cannot be
added, dropped or changed without the signature failing. It permits loading a version that
is not greater than ``VERSION``, and only while the policy in force has exactly that version:
a rollback signed to leave v3 cannot be replayed once v4 is in force.

**Start-up.** A starting worker has no policy in force in memory. It compares with the one
it last put in force, kept in ``<JITWATCH_DATA_DIR>/policy-in-force.json`` (version and
sha256, written after each load record is sent), and with the one any worker of the app last
put in force: the last record of the compacted topic ``<app_id>-policy``
(:func:`in_force_record`, key :data:`IN_FORCE_KEY`, written after each load record with
signers configured; only the worker's principal may write it). So a worker started on an
empty data dir, or one with an old data dir, cannot roll the app back either; a policy that
does not follow both is refused and the worker does not start.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import orjson

from schemas.errors import PolicyError

__all__ = ["IN_FORCE_FILE", "IN_FORCE_KEY", "IN_FORCE_SCHEMA", "compare_versions",
           "in_force_record", "order_problem", "read_in_force", "read_in_force_record",
           "rollback_message", "write_in_force"]

IN_FORCE_FILE = "policy-in-force.json"
"""The file in the worker's data dir naming the policy it last put in force."""

IN_FORCE_KEY = b"in-force"
"""The key of the policy topic's records: compaction keeps the last."""
IN_FORCE_SCHEMA = "jit.policy-in-force/v1"

_PART = re.compile(r"\d+|[A-Za-z]+|[^\dA-Za-z.\-_+]+")


def _parts(version: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in _PART.findall(version)]


def compare_versions(first: str, second: str) -> int | None:
    """-1, 0 or 1 as ``first`` is older than, the same as, or newer than ``second``; None
    when they cannot be ordered (see the module's description)."""
    left, right = _parts(first), _parts(second)
    if not any(isinstance(p, int) for p in left) or not any(isinstance(p, int) for p in right):
        return None
    for a, b in zip(left, right, strict=False):
        if isinstance(a, int) and isinstance(b, int):
            if a != b:
                return -1 if a < b else 1
        elif a != b:
            return None
    return (len(left) > len(right)) - (len(left) < len(right))


def rollback_message(policy: bytes, rollback_from: str) -> bytes:
    """What a rollback's signature covers: the UTF-8 JSON object, sorted keys, no
    whitespace, ``{"policy_sha256": hex SHA-256 of the policy file's exact bytes,
    "rollback_from": the version in force it replaces, "schema": "jit.policy-rollback/v1"}``."""
    return orjson.dumps({"policy_sha256": hashlib.sha256(policy).hexdigest(),
                         "rollback_from": rollback_from, "schema": "jit.policy-rollback/v1"},
                        option=orjson.OPT_SORT_KEYS)


def order_problem(in_force: tuple[str, str] | None, version: str, sha256: str,
                  rollback_from: str | None) -> str | None:
    """Why a signed policy ``version`` (text ``sha256``) may not replace ``in_force``
    ((version, sha256), None when there is nothing to compare with), or None when it may."""
    if compare_versions(version, version) is None:
        return (f"policy version {version!r} cannot be ordered (it needs a numeric part, e.g. "
                "2026-12-06.1): with signers configured every version must be comparable")
    if in_force is None:
        return None
    old, old_sha = in_force
    if rollback_from is not None:
        if rollback_from != old:
            return (f"policy {version} is signed as a rollback from {rollback_from}, but "
                    f"{old} is in force")
        return None
    order = compare_versions(version, old)
    if order == 1:
        return None
    if order is None:
        return (f"policy version {version} cannot be ordered against {old} in force; sign it "
                f"as a rollback (`jitwatch sign policy --rollback {old}`) to load it")
    if order == 0:
        if sha256 == old_sha:
            return None
        return (f"policy {version} has the same version as {old} in force but another text "
                "(a changed policy needs a greater version)")
    return (f"policy {version} is older than {old} in force (rollback refused; an operator "
            f"may sign one: `jitwatch sign policy --rollback {old}`)")


def read_in_force(path: Path | None) -> tuple[str, str] | None:
    """(version, sha256) of the policy last put in force, from ``path``; None when there is
    none. An unreadable file is refused, never read as "none" (fail closed).

    Raises:
        PolicyError: naming the file.
    """
    if path is None or not path.exists():
        return None
    try:
        data = orjson.loads(path.read_bytes())
        return str(data["version"]), str(data["sha256"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise PolicyError(f"{path} (the policy last in force) is unreadable: {exc}; remove it "
                          "only if no policy rollback is to be prevented") from exc


def write_in_force(path: Path, version: str, sha256: str) -> None:
    """Record the policy put in force (a temporary file renamed over the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(orjson.dumps({"version": version, "sha256": sha256}) + b"\n")
    temporary.replace(path)


def in_force_record(version: str, sha256: str, worker: str) -> bytes:
    """The policy topic's value naming the policy a worker put in force."""
    return orjson.dumps({"schema": IN_FORCE_SCHEMA, "version": version, "sha256": sha256,
                         "worker": worker})


def read_in_force_record(value: bytes | None, topic: str) -> tuple[str, str] | None:
    """(version, sha256) from a policy topic value; None for a deleted key. A value that
    cannot be read is refused, never read as "none" (fail closed).

    Raises:
        PolicyError: naming the topic.
    """
    if value is None:
        return None
    try:
        data = orjson.loads(value)
        if data["schema"] != IN_FORCE_SCHEMA:
            raise KeyError(f"schema {data['schema']!r}")
        return str(data["version"]), str(data["sha256"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise PolicyError(f"the last record of {topic} (the app's policy in force) is "
                          f"unreadable: {exc}; only jitwatch's worker may write that topic")\
            from exc
