"""The faust app's credentials: the same settings as the aiokafka clients, secrets kept."""

from __future__ import annotations

from pathlib import Path

from streams.settings import load_settings
from streams.worker.credentials import faust_credentials

SECRET = "s3cret-not-for-logs"  # noqa: S105 - a test value


def test_password_from_file_stays_out_of_the_credentials_repr(tmp_path: Path) -> None:
    secret_file = tmp_path / "watcher.password"
    secret_file.write_text(SECRET + "\n")
    settings = load_settings(kafka_security_protocol="SASL_PLAINTEXT",
                             kafka_sasl_username="watcher",
                             kafka_sasl_password_file=secret_file)
    assert SECRET not in repr(faust_credentials(settings))


def test_plaintext_has_no_credentials() -> None:
    assert faust_credentials(load_settings()) is None
