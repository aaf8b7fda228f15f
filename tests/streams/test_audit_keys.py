"""Notary keys and Redis secrets: files only, private key 0600, never in reprs or output."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import ConfigError
from streams.audit.chain import key_id
from streams.audit.keys import index_member, index_places, index_range
from streams.audit.notary import generate_keys, load_private_key, load_public_key
from streams.cli.main import main
from streams.settings import load_settings


def test_keygen_writes_a_0600_private_key_and_never_overwrites(tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path)
    assert private.stat().st_mode & 0o777 == 0o600
    assert key_id(load_private_key(private).public_key()) == key_id(load_public_key(public))
    with pytest.raises(ConfigError, match="never overwritten"):
        generate_keys(tmp_path)


def test_keygen_if_missing_keeps_a_pair_already_there(tmp_path: Path) -> None:
    """A container runs `jitwatch audit keygen --if-missing` on every start."""
    assert main(["audit", "keygen", "--out", str(tmp_path), "--if-missing"]) == 0
    first = (tmp_path / "notary.key").read_bytes()
    assert main(["audit", "keygen", "--out", str(tmp_path), "--if-missing"]) == 0
    assert (tmp_path / "notary.key").read_bytes() == first
    assert main(["audit", "keygen", "--out", str(tmp_path)]) == 2


def test_a_private_key_others_can_read_is_refused(tmp_path: Path) -> None:
    private, _ = generate_keys(tmp_path)
    private.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_private_key(private)


def test_a_missing_or_wrong_key_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JITWATCH_AUDIT_SIGNING_KEY_FILE"):
        load_private_key(None)
    _, public = generate_keys(tmp_path)
    public.chmod(0o600)
    with pytest.raises(ConfigError, match="not a PEM private key"):
        load_private_key(public)
    with pytest.raises(ConfigError, match="--public-key"):
        load_public_key(None)


def test_redis_passwords_come_from_files_and_stay_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-" + "x" * 20
    (tmp_path / "sink.password").write_text(secret + "\n")
    (tmp_path / "notary.password").write_text("other\n")
    monkeypatch.setenv("JITWATCH_REDIS_PASSWORD_FILE", str(tmp_path / "sink.password"))
    monkeypatch.setenv("JITWATCH_NOTARY_REDIS_PASSWORD_FILE", str(tmp_path / "notary.password"))
    settings = load_settings()
    assert settings.redis_password is not None
    assert settings.redis_password.get_secret_value() == secret
    assert settings.notary_redis_password is not None
    assert settings.notary_redis_password.get_secret_value() == "other"
    assert secret not in repr(settings)
    assert secret not in str(settings.model_dump())
    monkeypatch.setenv("JITWATCH_REDIS_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="JITWATCH_REDIS_PASSWORD_FILE: cannot read"):
        load_settings()


def test_keygen_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "keygen", "--out", str(tmp_path / "keys")]) == 0
    out = capsys.readouterr().out
    assert "notary.key" in out
    assert "PRIVATE KEY" not in out
    assert main(["audit", "keygen", "--out", str(tmp_path / "keys")]) == 2


def test_index_ranges_bound_value_and_time_bucket() -> None:
    members = sorted([index_member(b"alice", 5_000, 0, [b"1"]),
                      index_member(b"alice", 10_000, 1, [b"2", b"7"]),
                      index_member(b"alice", 11_500, 0, [b"3"]),
                      index_member(b"alicia", 7_000, 0, [b"4"]),
                      index_member(b"al", 8_000, 0, [b"5"])])

    def between(low: bytes, high: bytes) -> list[tuple[int, list[int]]]:
        inside_low = (lambda m: m >= low[1:]) if low[:1] == b"[" else (lambda m: m > low[1:])
        inside_high = (lambda m: m <= high[1:]) if high[:1] == b"[" else \
            (lambda m: m < high[1:])
        return [index_places(m) for m in members if inside_low(m) and inside_high(m)]

    assert between(*index_range(b"alice", None, None)) == [(0, [1]), (1, [2, 7]), (0, [3])]
    assert between(*index_range(b"alice", 6_000, 10_999)) == [(1, [2, 7])]
    # Whole buckets: 11,500 is in the bucket from 11,000, which a range from 11,200 reads.
    assert between(*index_range(b"alice", 11_200, None)) == [(0, [3])]
    assert between(*index_range(b"alice", 10_000, 10_000)) == [(1, [2, 7])]
    assert between(*index_range(b"al", None, None)) == [(0, [5])]
    assert index_member(b"deny", 10_999, 3, [b"8"]) == b"deny\x000000000010000\x003:8"
