"""Policy rollback protection (issue H, finding 10): with signers configured a new policy's
version must be greater than the one in force, unless an operator signed a rollback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest

from schemas.errors import PolicyError
from streams.cli.main import main
from streams.control.keys import read_private_key
from streams.control.policy import PolicyControl, policy_load_record, sign_policy
from streams.control.rollback import compare_versions, read_in_force_record

_BUMPS = [0]


def _bump(path: Path) -> None:
    """A later mtime each call, so every write is noticed by the poll."""
    _BUMPS[0] += 1
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + _BUMPS[0] * 1_000_000_000))


def _write(tmp_path: Path, text: str, rollback_from: str | None = None) -> Path:
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    sign_policy(policy, "sec-1", read_private_key(tmp_path / "signer.key"),
                rollback_from=rollback_from)
    _bump(policy)
    return policy


def _record(control: PolicyControl, polled: tuple[str, object, str | None],
            path: Path) -> dict[str, object]:
    outcome, candidate, reason = polled
    _key, value = policy_load_record("app", outcome, control.current, candidate,  # type: ignore[arg-type]
                                     reason, path)
    record: dict[str, object] = orjson.loads(value)
    return record


@pytest.mark.parametrize(("older", "newer"), [
    ("2026-11-23.3", "2026-12-06.1"), ("2026-12-06.2", "2026-12-06.10"),
    ("2026-12-06", "2026-12-06.1"), ("v1", "v2"), ("auth-v1", "auth-v2"),
    ("demo-2026-11-23.1", "demo-2026-12-01.1")])
def test_versions_order_as_dotted_dated_sequences(older: str, newer: str) -> None:
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1
    assert compare_versions(newer, newer) == 0


@pytest.mark.parametrize(("first", "second"), [
    ("auth-v1", "2026-12-06.1"), ("golden", "golden"), ("v1", "w2"), ("1.x", "1.2")])
def test_versions_that_cannot_be_ordered(first: str, second: str) -> None:
    assert compare_versions(first, second) is None


def test_an_older_signed_policy_with_its_sig_is_refused(tmp_path: Path, keys: Path) -> None:
    policy = _write(tmp_path, 'version = "2026-11-23.1"\n')
    old_text, old_sig = policy.read_bytes(), (tmp_path / "policy.toml.sig").read_bytes()
    control = PolicyControl(policy, keys)
    _write(tmp_path, 'version = "2026-12-06.1"\n')
    polled = control.poll()
    assert polled is not None
    assert polled[0] == "loaded"
    assert polled[1] is not None
    control.accept(polled[1])
    # The attacker puts back the older, validly signed file and its signature.
    policy.write_bytes(old_text)
    (tmp_path / "policy.toml.sig").write_bytes(old_sig)
    _bump(policy)
    polled = control.poll()
    assert polled is not None
    outcome, candidate, reason = polled
    assert (outcome, candidate) == ("refused", None)
    assert "2026-11-23.1" in (reason or "")
    assert "2026-12-06.1" in (reason or "")
    assert control.policy().ref.version == "2026-12-06.1"
    record = _record(control, polled, policy)
    assert record["outcome"] == "refused"
    assert record["rollback"] is False
    assert "2026-11-23.1" in str(record["reason"])


def test_a_changed_text_with_the_same_version_is_refused(tmp_path: Path, keys: Path) -> None:
    control = PolicyControl(_write(tmp_path, 'version = "v1"\n'), keys)
    _write(tmp_path, 'version = "v1"\n# break-glass back on\n')
    polled = control.poll()
    assert polled is not None
    assert polled[0] == "refused"
    assert "same version" in (polled[2] or "")
    assert control.policy().ref.version == "v1"


def test_an_operator_signed_rollback_loads_and_says_so(tmp_path: Path, keys: Path) -> None:
    control = PolicyControl(_write(tmp_path, 'version = "v3"\n'), keys)
    _write(tmp_path, 'version = "v2"\n', rollback_from="v3")
    polled = control.poll()
    assert polled is not None
    outcome, candidate, _ = polled
    assert outcome == "loaded"
    assert candidate is not None
    assert candidate.rollback_from == "v3"
    record = _record(control, polled, tmp_path / "policy.toml")
    assert record["rollback"] is True
    assert "rollback from v3" in str(record["reason"])
    control.accept(candidate)
    assert control.policy().ref.version == "v2"


def test_a_rollback_signature_binds_the_version_it_replaces(tmp_path: Path,
                                                           keys: Path) -> None:
    """A rollback signed to leave v3 does not load once v4 is in force (replay)."""
    control = PolicyControl(_write(tmp_path, 'version = "v4"\n'), keys)
    _write(tmp_path, 'version = "v2"\n', rollback_from="v3")
    polled = control.poll()
    assert polled is not None
    assert polled[0] == "refused"
    assert "from v3, but v4 is in force" in (polled[2] or "")


def test_the_rollback_flag_is_covered_by_the_signature(tmp_path: Path, keys: Path) -> None:
    control = PolicyControl(_write(tmp_path, 'version = "v3"\n'), keys)
    _write(tmp_path, 'version = "v2"\n', rollback_from="v3")
    sig = tmp_path / "policy.toml.sig"
    detached = orjson.loads(sig.read_bytes())
    sig.write_bytes(orjson.dumps({**detached, "rollback_from": "v9"}))
    polled = control.poll()
    assert polled is not None
    assert polled[0] == "refused"
    assert "does not verify" in (polled[2] or "")
    normal = _write(tmp_path, 'version = "v5"\n')
    detached = orjson.loads(sig.read_bytes())
    sig.write_bytes(orjson.dumps({**detached, "rollback_from": "v3"}))
    _bump(normal)
    polled = control.poll()
    assert polled is not None
    assert polled[0] == "refused"


def test_start_up_compares_with_the_policy_last_in_force(tmp_path: Path, keys: Path) -> None:
    memory = tmp_path / "data" / "policy-in-force.json"
    control = PolicyControl(_write(tmp_path, 'version = "v2"\n'), keys, memory)
    control.remember()
    assert orjson.loads(memory.read_bytes())["version"] == "v2"
    shutil.copy(tmp_path / "policy.toml", tmp_path / "v2.toml")
    _write(tmp_path, 'version = "v1"\n')
    with pytest.raises(PolicyError, match=r"v1 is older than v2"):
        PolicyControl(tmp_path / "policy.toml", keys, memory)
    _write(tmp_path, 'version = "v3"\n')
    assert PolicyControl(tmp_path / "policy.toml", keys, memory).policy().ref.version == "v3"


def test_a_version_that_cannot_be_ordered_is_refused_only_when_signing(
        tmp_path: Path, keys: Path) -> None:
    policy = _write(tmp_path, 'version = "golden-case"\n')
    with pytest.raises(PolicyError, match="cannot be ordered"):
        PolicyControl(policy, keys)
    assert PolicyControl(policy, None).policy().ref.version == "golden-case"


def test_sign_policy_cli_signs_a_rollback(tmp_path: Path, keys: Path) -> None:
    control = PolicyControl(_write(tmp_path, 'version = "v3"\n'), keys)
    (tmp_path / "policy.toml").write_text('version = "v2"\n')
    assert main(["sign", "policy", str(tmp_path / "policy.toml"), "--key",
                 str(tmp_path / "signer.key"), "--key-id", "sec-1", "--rollback", "v3"]) == 0
    detached = orjson.loads((tmp_path / "policy.toml.sig").read_bytes())
    assert detached["rollback_from"] == "v3"
    _bump(tmp_path / "policy.toml")
    polled = control.poll()
    assert polled is not None
    assert polled[0] == "loaded"


def test_a_start_follows_the_apps_last_policy_in_force(tmp_path: Path, keys: Path) -> None:
    """A worker on an empty (or old) data dir is still compared with what any worker of the
    app last put in force (the policy topic's record)."""
    control = PolicyControl(_write(tmp_path, 'version = "2026-11-23.1"\n'), keys)
    with pytest.raises(PolicyError, match=r"older than 2026-12-06\.1 in force.*demo-policy"):
        control.follow_app(("2026-12-06.1", "0" * 64), "demo-policy")
    control.follow_app(("2026-11-01.1", "0" * 64), "demo-policy")  # newer than the app's
    control.follow_app(None, "demo-policy")  # a new app: nothing to follow
    ref = control.policy().ref
    assert read_in_force_record(control.in_force_value(), "demo-policy") == (
        ref.version, ref.sha256)


def test_an_unreadable_policy_topic_record_fails_closed() -> None:
    assert read_in_force_record(None, "t") is None  # a deleted key
    for value in (b"{", b'{"version": "v9"}', b'{"schema": "other", "version": "v", '
                  b'"sha256": "s"}', b"[1]"):
        with pytest.raises(PolicyError, match="unreadable"):
            read_in_force_record(value, "t")
