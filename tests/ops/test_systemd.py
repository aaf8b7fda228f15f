"""ops/systemd/: each unit verifies with systemd-analyze and keeps its hardening."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams.audit.sink import TAMPER_EXIT
from tests.ops.tools import require_tool
from tests.paths import REPO

UNITS = sorted((REPO / "ops" / "systemd").glob("*.service"))
INSTALLED = "/opt/jitwatch/.venv/bin/jitwatch"
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native", "Restart": "on-failure", "UMask": "0077",
}


def _settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if match:
            found.setdefault(match[1], []).append(match[2])
    return found


def _runnable_copy(unit: Path, directory: Path) -> Path:
    # verify checks that ExecStart's binary exists and is executable: the venv's jitwatch
    # stands in for the installed one, so the check means something here.
    jitwatch = Path(sys.executable).with_name("jitwatch")
    assert jitwatch.is_file(), f"{jitwatch} missing: run ops/bootstrap"
    copy = directory / unit.name
    copy.write_text(unit.read_text(encoding="utf-8").replace(INSTALLED, str(jitwatch)),
                    encoding="utf-8")
    return copy


def test_there_is_a_unit_for_each_process() -> None:
    assert [unit.name for unit in UNITS] == ["jitwatch-audit-sink.service",
                                             "jitwatch-notary.service",
                                             "jitwatch-siem.service",
                                             "jitwatch-worker.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_unit_verifies_without_a_word(unit: Path, tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    result = subprocess.run([analyze, "verify", "--man=no", str(_runnable_copy(unit, tmp_path))],
                            capture_output=True, text=True, timeout=60, check=False)
    # A misspelt key is only a warning to systemd ("Unknown key ..., ignoring"), and an
    # ignored hardening line is no hardening: any output fails too.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_unit_is_hardened(unit: Path, tmp_path: Path) -> None:
    settings = _settings(unit)
    assert {key: settings.get(key, [None])[-1] for key in HARDENING} == HARDENING
    name = unit.stem.removeprefix("jitwatch-")
    assert settings["User"] == [f"jitwatch-{name}"], "a user of its own"
    assert settings["SystemCallFilter"][0] == "@system-service"
    writable = settings.get("ReadWritePaths", [])
    states = settings.get("StateDirectory", [])
    assert writable == [f"/var/lib/{state}" for state in states], "its state directory only"
    assert states in ([], [f"jitwatch-{name}"])
    # Secrets as credentials, never as values in the environment.
    assert not [line for line in settings.get("Environment", [])
                if "PASSWORD=" in line or "KEY=" in line]
    assert all(value.endswith(("/kafka-password", "/redis-password", "/notary.key"))
               for value in settings["Environment"] if "_FILE=" in value)
    analyze = require_tool("systemd-analyze")
    security = subprocess.run([analyze, "security", "--offline=yes",
                               str(_runnable_copy(unit, tmp_path))],
                              capture_output=True, text=True, timeout=60, check=False)
    exposure = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    assert exposure is not None, security.stdout + security.stderr
    assert float(exposure[1]) <= 2.0, security.stdout


@pytest.mark.parametrize("unit", [u for u in UNITS if "audit" in u.name or "notary" in u.name],
                         ids=lambda unit: unit.stem)
def test_a_tamper_stop_is_never_restarted(unit: Path) -> None:
    assert _settings(unit)["RestartPreventExitStatus"] == [str(TAMPER_EXIT)]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_unit_authenticates_as_a_declared_principal(unit: Path) -> None:
    import tomllib

    principals = tomllib.loads((REPO / "ops" / "principals.toml").read_text())["principals"]
    usernames = [value.split("=", 1)[1] for value in _settings(unit)["Environment"]
                 if value.startswith("JITWATCH_KAFKA_SASL_USERNAME=")]
    assert len(usernames) == 1
    assert usernames[0] in principals
