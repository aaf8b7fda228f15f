"""Policy change control: only validated, signed policies load; a bad change keeps the old."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import orjson
import pytest

from schemas.errors import PolicyError
from streams.cli.main import main
from streams.control.keys import read_private_key
from streams.control.policy import PolicyControl, policy_load_record, sign_policy

POLICY = 'version = "v1"\n'


def _signed(tmp_path: Path, text: str) -> Path:
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    sign_policy(policy, "sec-1", read_private_key(tmp_path / "signer.key"))
    return policy


def _touch_later(path: Path) -> None:
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))


def test_signed_policy_loads_and_names_its_signer(tmp_path: Path, keys: Path) -> None:
    control = PolicyControl(_signed(tmp_path, POLICY), keys)
    assert control.current.signer == "security-team"
    assert control.current.key_id == "sec-1"
    assert control.policy().ref.version == "v1"


def test_unsigned_tampered_or_missing_policy_refuses_to_start(tmp_path: Path,
                                                              keys: Path) -> None:
    unsigned = tmp_path / "unsigned.toml"
    unsigned.write_text(POLICY)
    with pytest.raises(PolicyError, match="unsigned"):
        PolicyControl(unsigned, keys)
    policy = _signed(tmp_path, POLICY)
    policy.write_text('version = "v1-evil"\n')
    with pytest.raises(PolicyError, match="does not verify"):
        PolicyControl(policy, keys)
    with pytest.raises(PolicyError, match="no policy file"):
        PolicyControl(None, keys)


def test_tampered_change_keeps_the_old_policy_and_a_signed_one_replaces_it(
        tmp_path: Path, keys: Path) -> None:
    policy = _signed(tmp_path, POLICY)
    control = PolicyControl(policy, keys)
    assert control.poll() is None, "nothing changed"
    policy.write_text('version = "v2"\n')  # changed, signature now stale
    _touch_later(policy)
    outcome, candidate, reason = control.poll() or ("", None, None)
    assert (outcome, candidate) == ("refused", None)
    assert reason is not None
    assert "does not verify" in reason
    assert control.policy().ref.version == "v1"
    _key, value = policy_load_record("app", "refused", control.current, None, reason, policy)
    record = orjson.loads(value)
    assert record["schema"] == "jit.policy-load/v1"
    assert record["old"]["version"] == "v1"
    assert record["old"]["signer"] == "security-team"
    assert record["new"]["sha256"] != record["old"]["sha256"]
    assert "action" not in record, "a load record is no verdict"

    _signed(tmp_path, 'version = "v2"\n')
    _touch_later(policy)
    outcome, candidate, _ = control.poll() or ("", None, None)
    assert outcome == "loaded"
    assert candidate is not None
    control.accept(candidate)
    assert control.policy().ref.version == "v2"


def test_invalid_policy_is_refused_even_when_signed(tmp_path: Path, keys: Path) -> None:
    control = PolicyControl(_signed(tmp_path, POLICY), keys)
    _signed(tmp_path, 'version = "v2"\nno_such_field = 1\n')
    _touch_later(tmp_path / "policy.toml")
    outcome, _, reason = control.poll() or ("", None, None)
    assert outcome == "refused"
    assert "no_such_field" in (reason or "")
    assert control.policy().ref.version == "v1"


def _sign_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              raw: dict[str, object], *args: str) -> dict[str, object]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(orjson.dumps(raw))))
    assert main(["sign", *args]) == 0
    signed: dict[str, object] = orjson.loads(capsys.readouterr().out)
    return signed


def test_sign_review_cli_output_verifies(tmp_path: Path, keys: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from policy import request_digest, review_signature_problem
    from schemas.events import INPUT_EVENT, RequestCreated, RequestReviewed
    from schemas.policy import ReviewerKey, StepUpPolicy, TenantPolicy

    asked = {"type": "request.created", "event_id": "e-1", "at": "2026-11-23T10:00:00Z",
             "subject": {"id": "dev"}, "request_id": "r-1",
             "resources": [{"id": "db/logs", "env": "prod"}]}
    (tmp_path / "request.json").write_bytes(orjson.dumps(asked))
    created = INPUT_EVENT.validate_python(asked)
    assert isinstance(created, RequestCreated)
    digest = request_digest(created)
    review = {"type": "request.reviewed", "event_id": "e-2", "at": "2026-11-23T10:05:00Z",
              "subject": {"id": "dev"}, "request_id": "r-1", "reviewer": {"id": "carol"},
              "outcome": "approved"}
    key = ["--key", str(tmp_path / "signer.key"), "--key-id", "carol-1"]
    public = keys.read_text().split('public_key = "')[1].split('"')[0]
    tenant = TenantPolicy(step_up=StepUpPolicy(reviewer_keys=(
        ReviewerKey(reviewer="carol", key_id="carol-1", public_key=public),)))
    by_file = _sign_cli(monkeypatch, capsys, review, "review", *key, "--request",
                        str(tmp_path / "request.json"))
    by_field = _sign_cli(monkeypatch, capsys, review | {"request_digest": digest}, "review",
                         *key)
    for signed in (by_file, by_field):
        event = INPUT_EVENT.validate_python(signed)
        assert isinstance(event, RequestReviewed)
        assert review_signature_problem(event, tenant, digest) is None
        assert review_signature_problem(event, tenant, "0" * 64) is not None
    # Without the request it decides, nothing is signed.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(orjson.dumps(review))))
    assert main(["sign", "review", *key]) == 2


def test_sign_release_cli_output_verifies(tmp_path: Path, keys: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from policy import release_problem
    from schemas.events import INPUT_EVENT, LockReleased
    from schemas.policy import OperatorKey, TenantPolicy

    release = {"type": "lock.released", "event_id": "e-3", "at": "2026-11-23T10:06:00Z",
               "subject": {"id": "dev"}, "target": {"subject": "dev"}, "by": "oncall"}
    signed = _sign_cli(monkeypatch, capsys, release, "release", "--key",
                       str(tmp_path / "signer.key"), "--key-id", "oncall-1")
    public = keys.read_text().split('public_key = "')[1].split('"')[0]
    tenant = TenantPolicy(operators=(
        OperatorKey(operator="oncall", key_id="oncall-1", public_key=public),))
    event = INPUT_EVENT.validate_python(signed)
    assert isinstance(event, LockReleased)
    assert release_problem(event, tenant) is None
