"""Redis key names of the audit trail, and the secrets its Redis clients log in with."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import ConfigError
from streams.audit.keys import index_member, index_places, index_range
from streams.settings import load_settings


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
