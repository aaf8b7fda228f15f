"""Fixtures of the policy change control tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli.main import main


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A signer key (keygen) and the signers file trusting it."""
    assert main(["keygen", "--out", str(tmp_path / "signer.key")]) == 0
    public = capsys.readouterr().out.strip()
    assert oct((tmp_path / "signer.key").stat().st_mode)[-3:] == "600"
    signers = tmp_path / "signers.toml"
    signers.write_text(f'[signers.sec-1]\nsigner = "security-team"\n{public}\n')
    return signers
