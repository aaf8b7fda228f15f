"""The one settings object and its sections: same variables, each part takes its own."""

from __future__ import annotations

import subprocess
import sys

import pydantic
import pytest

from schemas.errors import ConfigError
from streams.settings import (
    AuditSettings,
    KafkaSettings,
    PolicySettings,
    Settings,
    TopicSettings,
    WebSettings,
    WorkerSettings,
    load_settings,
)
from tests.paths import REPO

SECTIONS = (KafkaSettings, TopicSettings, WorkerSettings, PolicySettings, AuditSettings,
            WebSettings)


def test_every_variable_belongs_to_one_section_and_keeps_its_name() -> None:
    owners: dict[str, list[str]] = {}
    for section in SECTIONS:
        for name in section.model_fields:
            owners.setdefault(name, []).append(section.__name__)
    assert {name: found for name, found in owners.items() if len(found) > 1} == {}
    assert set(Settings.model_fields) == {*owners, "log_level"}


def test_sections_carry_the_values_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JITWATCH_KAFKA_BOOTSTRAP", "kafka:19092")
    monkeypatch.setenv("JITWATCH_APP_ID", "jw-test")
    monkeypatch.setenv("JITWATCH_BATCH_MAX", "7")
    monkeypatch.setenv("JITWATCH_POLICY_POLL_S", "1.5")
    monkeypatch.setenv("JITWATCH_AUDIT_GROUP", "audit-test")
    monkeypatch.setenv("JITWATCH_NOTARY_WEB_PORT", "26068")
    settings = load_settings()
    assert settings.kafka.kafka_bootstrap == "kafka:19092"
    assert (settings.topics.app_id, settings.topics.topic_commands) == ("jw-test",
                                                                        "jw-test-commands")
    assert settings.worker.batch_max == 7
    assert settings.policy.policy_poll_s == 1.5
    assert settings.audit.audit_group == "audit-test"
    assert (settings.web.web_host, settings.web.web_port, settings.web.audit_web_port,
            settings.web.notary_web_port) == ("127.0.0.1", 6066, 6067, 26068)
    assert settings.topics is settings.topics, "built once"
    with pytest.raises(pydantic.ValidationError):
        settings.worker.batch_max = 8  # type: ignore[misc]  # frozen, as the whole


def test_validation_names_the_variable_as_before() -> None:
    with pytest.raises(ConfigError, match="JITWATCH_BATCH_MAX"):
        load_settings(batch_max=0)


def test_settings_import_no_other_part_of_jitwatch() -> None:
    """settings -> policy control -> admin -> settings was a circle; now settings is a leaf
    (the Kafka security fields are its kafka section; streams.kafka reads them). Its one
    import, the OAUTHBEARER fields of that section (issue 23), is a leaf too."""
    found = subprocess.run(
        [sys.executable, "-c", "import sys, streams.settings; print(sorted(m for m in "
         "sys.modules if m.startswith('streams')))"],
        capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert found.strip() == "['streams', 'streams.oauth_settings', 'streams.settings']"
