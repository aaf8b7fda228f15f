"""Policy change control: load a policy only when it validates and its signature verifies.

A signed policy has a detached signature next to it, ``<policy>.sig``: JSON
``{"key_id": ..., "signature": <base64 Ed25519 over the policy file's exact bytes>}``
(``jitwatch policy sign`` writes it). The trusted signers are a TOML file
(``JITWATCH_POLICY_SIGNERS_FILE``)::

    [signers.sec-2026]            # the key id
    signer = "security-team"      # who holds the key, named in every load record
    public_key = "<base64 of the raw 32-byte Ed25519 public key>"

With signers configured, an unsigned or badly signed policy is refused: the worker does not
start without a good one, and a bad change while it runs leaves the old policy in force.
So is one whose version does not increase, unless an operator signed it as a rollback
(``"rollback_from"`` in the ``.sig``: :mod:`streams.control.rollback`).
Every load or refused load becomes a ``jit.policy-load/v1`` record on the decisions topic.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policy.signatures import public_key_from_b64, sign, verify
from schemas._base import format_time
from schemas.errors import JitwatchError, PolicyError
from schemas.policy import LoadedPolicy, parse_policy
from schemas.policy_load import POLICY_LOAD_SCHEMA, PolicyLoadRecord
from streams.control.rollback import (
    in_force_record,
    order_problem,
    read_in_force,
    rollback_message,
    write_in_force,
)

__all__ = [
    "PACKAGED_POLICY",
    "POLICY_HEADERS",
    "PolicyControl",
    "PolicyLoad",
    "load_policy",
    "load_signers",
    "policy_load_record",
    "sign_policy",
]

log = logging.getLogger(__name__)

PACKAGED_POLICY = "packaged default policy"
"""How the packaged ``policy/default.toml`` is named where a file's path would be."""

POLICY_HEADERS = [("jit.record", b"policy-load")]
"""Headers of a load record on the decisions topic."""


@dataclass(frozen=True, slots=True)
class PolicyLoad:
    """A policy in force: what was loaded, from where, and who signed it."""

    loaded: LoadedPolicy
    source: str
    signer: str | None
    key_id: str | None
    rollback_from: str | None = None
    """Set when an operator signed this policy as a rollback from that version in force."""

    def summary(self) -> dict[str, Any]:
        """The fields a load record and ``whoami`` show."""
        return {"version": self.loaded.ref.version, "sha256": self.loaded.ref.sha256,
                "signer": self.signer, "key_id": self.key_id, "source": self.source}


def _policy_bytes(path: Path | None) -> bytes:
    """The exact bytes of the policy file, or of the packaged default when ``path`` is None
    (the one place that reads it)."""
    if path is None:
        return resources.files("policy").joinpath("default.toml").read_bytes()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc


def load_policy(path: Path | None) -> LoadedPolicy:
    """Read and validate the policy file, or the packaged default policy when none is given;
    no signature check (``simulate`` and ``policy check`` try candidate policies).

    Raises:
        PolicyError: when it cannot be read or is invalid.
    """
    return parse_policy(_policy_bytes(path).decode("utf-8"),
                        PACKAGED_POLICY if path is None else str(path))


def load_signers(path: Path) -> dict[str, tuple[str, Ed25519PublicKey]]:
    """Key id -> (signer, public key) from the signers file.

    Raises:
        PolicyError: naming the file and the bad entry.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read policy signers file {path} "
                          f"(JITWATCH_POLICY_SIGNERS_FILE): {exc}") from exc
    signers: dict[str, tuple[str, Ed25519PublicKey]] = {}
    for key_id, entry in (data.get("signers") or {}).items():
        try:
            signers[key_id] = (str(entry["signer"]), public_key_from_b64(entry["public_key"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyError(f"{path}: signers.{key_id} needs signer and public_key (base64 "
                              f"of a raw 32-byte Ed25519 key): {exc}") from exc
    if not signers:
        raise PolicyError(f"{path} lists no [signers.KEY_ID]; with no trusted signer no "
                          "policy could load")
    return signers


def _verify(path: Path, text: bytes, signers: dict[str, tuple[str, Ed25519PublicKey]]
            ) -> tuple[str, str, str | None]:
    sig_path = path.with_name(path.name + ".sig")
    try:
        detached = orjson.loads(sig_path.read_bytes())
        key_id, signature = str(detached["key_id"]), str(detached["signature"])
        rollback_from = detached.get("rollback_from")
        if rollback_from is not None and not isinstance(rollback_from, str):
            raise TypeError("rollback_from is not a version")
    except OSError as exc:
        raise PolicyError(f"{path} is unsigned: no {sig_path.name} next to it "
                          "(`jitwatch policy sign`)") from exc
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise PolicyError(f"{sig_path} is not a signature file (JSON with key_id and "
                          "signature)") from exc
    if key_id not in signers:
        raise PolicyError(f"{path} is signed by key {key_id!r}, which is not a trusted "
                          "signer (JITWATCH_POLICY_SIGNERS_FILE)")
    signer, public = signers[key_id]
    signed = text if rollback_from is None else rollback_message(text, rollback_from)
    if not verify(public, signed, signature):
        raise PolicyError(f"{path}: signature by {key_id!r} does not verify; the file was "
                          "changed after signing" + ("" if rollback_from is None else
                                                     " or the rollback was not signed so"))
    return signer, key_id, rollback_from


def _load(path: Path | None, signers: dict[str, tuple[str, Ed25519PublicKey]] | None
          ) -> PolicyLoad:
    if path is None and signers is not None:
        raise PolicyError("policy signers are configured but no policy file is: set "
                          "JITWATCH_POLICY_FILE to a signed policy")
    text = _policy_bytes(path)
    signer = key_id = rollback_from = None
    if path is not None and signers is not None:
        signer, key_id, rollback_from = _verify(path, text, signers)
    source = PACKAGED_POLICY if path is None else str(path)
    return PolicyLoad(parse_policy(text.decode("utf-8"), source), source, signer, key_id,
                      rollback_from)


def _in_order(candidate: PolicyLoad, in_force: tuple[str, str] | None,
              signers: object) -> PolicyLoad:
    """``candidate`` when its version may follow ``in_force`` (checked only with signers).

    Raises:
        PolicyError: why not (streams.control.rollback.order_problem).
    """
    if signers is None:
        return candidate
    ref = candidate.loaded.ref
    problem = order_problem(in_force, ref.version, ref.sha256, candidate.rollback_from)
    if problem is not None:
        raise PolicyError(problem)
    return candidate


def _stamp(path: Path | None) -> tuple[int, ...] | None:
    if path is None:
        return None
    stamp: list[int] = []
    for item in (path, path.with_name(path.name + ".sig")):
        try:
            status = item.stat()
            stamp += [status.st_mtime_ns, status.st_size, status.st_ino]
        except OSError:
            stamp += [0, 0, 0]
    return tuple(stamp)


class PolicyControl:
    """The policy in force and its reloads. Not thread-safe: one event loop uses it."""

    def __init__(self, path: Path | None, signers_file: Path | None,
                 memory: Path | None = None) -> None:
        self._path = path
        self._signers = load_signers(signers_file) if signers_file is not None else None
        self._stamp = _stamp(path)
        self._memory = memory
        # At start nothing is in force in memory: compare with the policy last in force.
        in_force = read_in_force(memory) if self._signers is not None else None
        self.current = _in_order(_load(path, self._signers), in_force, self._signers)
        """The policy in force; raises at construction when none is acceptable."""

    @property
    def path(self) -> Path | None:
        """The policy file watched (None: the packaged default)."""
        return self._path

    def policy(self) -> LoadedPolicy:
        """The policy in force now (what the worker decides with)."""
        return self.current.loaded

    def poll(self) -> tuple[str, PolicyLoad | None, str | None] | None:
        """Reload when the file or its signature changed.

        Returns None when nothing changed, else ``(outcome, new, reason)``: ``loaded`` with
        the new policy, or ``refused`` (the old one stays in force) with why.
        """
        stamp = _stamp(self._path)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            candidate = _load(self._path, self._signers)
            if candidate.loaded.ref.sha256 == self.current.loaded.ref.sha256:
                return None  # touched, not changed
            ref = self.current.loaded.ref
            candidate = _in_order(candidate, (ref.version, ref.sha256), self._signers)
        except JitwatchError as exc:
            log.error("POLICY CHANGE REFUSED, %s (sha256 %s…) stays in force: %s",
                      self.current.loaded.ref.version, self.current.loaded.ref.sha256[:12], exc)
            return "refused", None, str(exc)
        log.warning("policy %s (sha256 %s…, signed by %s) replaces %s",
                    candidate.loaded.ref.version, candidate.loaded.ref.sha256[:12],
                    candidate.signer,
                    self.current.loaded.ref.version)
        return "loaded", candidate, None

    @property
    def signed(self) -> bool:
        """Signers are configured: policies are signed and ordered (rollback protection)."""
        return self._signers is not None

    def follow_app(self, in_force: tuple[str, str] | None, topic: str) -> None:
        """Refuse the policy in force unless it may follow ``in_force``, the one any worker
        of the app last put in force (read from ``topic``); nothing without signers.

        Raises:
            PolicyError: why, naming the topic.
        """
        if self._signers is None or in_force is None:
            return
        try:
            _in_order(self.current, in_force, self._signers)
        except PolicyError as exc:
            raise PolicyError(f"{exc} (policy {in_force[0]} is the app's last policy in "
                              f"force, {topic}: every worker's start is compared with it)"
                              ) from exc

    def in_force_value(self) -> bytes:
        """The policy topic's value for the policy in force (streams.control.rollback)."""
        ref = self.current.loaded.ref
        return in_force_record(ref.version, ref.sha256, _worker())

    def file_in_force(self) -> bool:
        """Whether the policy file on disk is the policy in force again (a refused change
        undone: no reload follows, as nothing differs from what is enforced)."""
        return _candidate_sha(self._path) == self.current.loaded.ref.sha256

    def accept(self, candidate: PolicyLoad) -> None:
        """Put a polled policy in force (after its load record was sent)."""
        self.current = candidate
        self.remember()

    def remember(self) -> None:
        """Keep the policy in force as the one a restart compares with (after its load
        record was sent); nothing without a data dir or without signers (unsigned
        policies are not ordered, so what they were is no baseline)."""
        if self._memory is not None and self._signers is not None:
            ref = self.current.loaded.ref
            write_in_force(self._memory, ref.version, ref.sha256)


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _candidate_sha(path: Path | None) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path else None
    except OSError:
        return None


def policy_load_record(app_id: str, outcome: str, old: PolicyLoad | None,
                       new: PolicyLoad | None, reason: str | None,
                       path: Path | None = None) -> tuple[bytes, bytes]:
    """(key, value) of a ``jit.policy-load/v1`` record for the decisions topic, built and
    checked through :class:`schemas.policy_load.PolicyLoadRecord`.

    Besides its own fields it carries ``decision_id``, ``at``, ``subject.id`` (the worker's
    app id) and ``cause.event_id``, which decision consumers key on, and no ``action``, so
    nothing mistakes it for a verdict.
    """
    now = datetime.now(UTC)
    new_summary = new.summary() if new is not None else {"sha256": _candidate_sha(path),
                                                         "source": str(path) if path else None}
    worker = _worker()
    identity = f"{app_id}|{worker}|{format_time(now)}|{new_summary.get('sha256')}|{outcome}"
    record_id = "p-" + hashlib.sha256(identity.encode()).hexdigest()[:32]
    # Every field is given, so exclude_unset (below) keeps them all, in the model's order;
    # a refused file's summary holds only the two fields known of it.
    record = PolicyLoadRecord.model_validate({
        "schema": POLICY_LOAD_SCHEMA,
        "decision_id": record_id,
        "outcome": outcome,
        "at": now,
        "emitted_at": now,
        "subject": {"id": app_id, "kind": "workload"},
        "worker": worker,
        "old": old.summary() if old is not None else None,
        "new": new_summary,
        "reason": reason or (_loaded_reason(new, old) if outcome == "loaded" else None),
        "rollback": outcome == "loaded" and new is not None and new.rollback_from is not None,
        "cause": {"event_id": record_id, "type": "policy.load", "topic": None,
                  "partition": None, "offset": None},
    })
    return app_id.encode(), _record_bytes(record)


def _loaded_reason(new: PolicyLoad | None, old: PolicyLoad | None) -> str:
    version = new.loaded.ref.version if new is not None else None
    if new is None or new.rollback_from is None:
        return f"policy {version} in force"
    replaced = old.loaded.ref.version if old is not None else new.rollback_from
    return (f"policy {version} in force: a rollback from {replaced}, signed as one by "
            f"{new.signer} (key {new.key_id})")


def _record_bytes(record: PolicyLoadRecord) -> bytes:
    # Times as the record has always carried them (format_time: milliseconds, Z); the
    # model's own JSON would write microseconds.
    value = record.model_dump(by_alias=True, exclude_unset=True)
    value["at"], value["emitted_at"] = format_time(record.at), format_time(record.emitted_at)
    return orjson.dumps(value)


def sign_policy(path: Path, key_id: str, private_key: Ed25519PrivateKey,
                rollback_from: str | None = None) -> Path:
    """Write ``<path>.sig`` for the policy file's exact bytes, or with ``rollback_from`` for
    a rollback from that version in force (streams.control.rollback); returns its path."""
    text = path.read_bytes()
    signed = text if rollback_from is None else rollback_message(text, rollback_from)
    detached: dict[str, str] = {"key_id": key_id,
                                "signature": base64.b64encode(sign(private_key, signed)).decode()}
    if rollback_from is not None:
        detached["rollback_from"] = rollback_from
    out = path.with_name(path.name + ".sig")
    out.write_bytes(orjson.dumps(detached) + b"\n")
    return out
