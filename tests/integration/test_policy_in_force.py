"""Rollback protection across data dirs (issue H, finding 10): a worker starting on an empty
data dir is compared with the policy any worker of the app last put in force, the record of
the compacted ``<app_id>-policy`` topic, and refuses an older signed policy."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from schemas.errors import PolicyError
from streams.cli.main import main
from streams.control.keys import read_private_key
from streams.control.policy import sign_policy
from streams.control.rollback import IN_FORCE_FILE
from streams.control.start import load_policy_control
from streams.settings import Settings, load_settings
from tests.integration.conftest import Stack

pytestmark = [pytest.mark.integration]


@pytest.fixture
def signed_settings(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                    ) -> Settings:
    """The session's settings with a signers file and an app of this test's own (so its
    policy topic starts empty)."""
    assert main(["keygen", "--out", str(tmp_path / "signer.key")]) == 0
    public = capsys.readouterr().out.strip()
    signers = tmp_path / "signers.toml"
    signers.write_text(f'[signers.sec-1]\nsigner = "security-team"\n{public}\n')
    values = {name[len("JITWATCH_"):].lower(): value for name, value in stack.env.items()
              if name.startswith("JITWATCH_")}
    values.update(app_id=f"{values.get('app_id', 'jitwatch')}-rb-{uuid.uuid4().hex[:6]}",
                  policy_signers_file=str(signers))
    return load_settings(**values)


def _signed(tmp_path: Path, version: str) -> Path:
    policy = tmp_path / f"{version}.toml"
    policy.write_text(f'version = "{version}"\n')
    sign_policy(policy, "sec-1", read_private_key(tmp_path / "signer.key"))
    return policy


def test_a_fresh_data_dir_cannot_roll_the_app_back(signed_settings: Settings,
                                                   tmp_path: Path) -> None:
    settings = signed_settings

    def start(version: str, data_dir: str) -> str:
        control = load_policy_control(settings.kafka, settings.topics, settings.policy,
                                      _signed(tmp_path, version),
                                      tmp_path / data_dir / IN_FORCE_FILE)
        control.remember()
        return control.policy().ref.version

    assert start("2026-12-06.1", "first") == "2026-12-06.1"
    with pytest.raises(PolicyError, match=rf"{settings.topics.topic_policy}"):
        start("2026-11-23.1", "empty")  # an older, validly signed policy on a new host
    assert start("2026-12-06.2", "second") == "2026-12-06.2"
    with pytest.raises(PolicyError, match=r"older than 2026-12-06\.2"):
        start("2026-12-06.1", "first")  # the first host's own memory is older than the app's
