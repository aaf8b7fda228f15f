"""docker-compose.yml stays in line with ops/stack: the same Redis ACL users (ops/redis-acl),
`default` off, AOF on, a notary, and each audit process on its own Redis user.

Docker is not needed: the file is parsed, and ops/redis-acl (which both use) is run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.paths import REPO

ACL_SCRIPT = REPO / "ops" / "redis-acl"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source.startswith("./") or source in declared, f"{name}: {mount}"
    return dict(compose["services"])


def _roles() -> list[str]:
    found = re.search(r"^roles=\(([^)]*)\)", ACL_SCRIPT.read_text(), re.MULTILINE)
    assert found, "ops/redis-acl lists its roles in roles=(...)"
    return found.group(1).split()


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Mount point -> volume (or host path)."""
    return {mount.split(":")[1]: mount.split(":")[0] for mount in service.get("volumes", [])}


def _volume_of(service: dict[str, Any], path: str) -> str:
    """The volume that holds ``path`` in ``service`` (its longest mount point above it)."""
    mounts = _mounts(service)
    point = max((p for p in mounts if path.startswith(p.rstrip("/") + "/")), key=len)
    return mounts[point]


def _password_files(services: dict[str, Any]) -> dict[str, str]:
    """Role -> the password file redis-init's ops/redis-acl call writes."""
    script = " ".join(services["redis-init"]["entrypoint"])
    assert "/ops/redis-acl /acl/users.acl" in script
    return dict(re.findall(r"\b([a-z]+)=(/\S+)", script))


def test_redis_runs_with_the_acl_file_and_the_aof(services: dict[str, Any]) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--aclfile /acl/users.acl" in command
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert _mounts(redis)["/acl"] == "redis-acl"
    assert _mounts(services["redis-init"])["/acl"] == "redis-acl"
    assert redis["depends_on"]["redis-init"]["condition"] == "service_completed_successfully"
    # `default` is off, so the health check logs in as the read-only verifier.
    health = " ".join(redis["healthcheck"]["test"])
    assert "--user jitwatch-verifier" in health
    password_file = _password_files(services)["verifier"]
    assert password_file in health
    assert _volume_of(redis, password_file) == _volume_of(services["redis-init"],
                                                          password_file)


def test_redis_init_makes_every_role_of_ops_redis_acl_as_ops_stack_does(
        services: dict[str, Any]) -> None:
    assert sorted(_password_files(services)) == sorted(_roles())
    stack = (REPO / "ops" / "stack").read_text()
    assert '"$ops/redis-acl" "$redis_acl"' in stack
    assert f"for role in {' '.join(_roles())}; do" in stack


@pytest.mark.parametrize(("service", "role", "variable"), [
    ("audit-sink", "sink", "JITWATCH_REDIS"),
    ("notary", "notary", "JITWATCH_NOTARY_REDIS"),
])
def test_each_audit_process_has_its_own_redis_user_and_only_its_password(
        services: dict[str, Any], service: str, role: str, variable: str) -> None:
    app = services[service]
    env = app["environment"]
    assert env[f"{variable}_USER"] == f"jitwatch-{role}"
    inside = env[f"{variable}_PASSWORD_FILE"]
    written = _password_files(services)[role]
    volume = _volume_of(services["redis-init"], written)
    assert _volume_of(app, inside) == volume
    assert Path(inside).name == Path(written).name
    assert _mounts(app)[str(Path(inside).parent)] == volume
    assert f"{volume}:{Path(inside).parent}:ro" in app["volumes"]
    # Nobody else gets that password (Redis only the verifier's, for its health check).
    others = [name for name, other in services.items()
              if name not in {service, "redis-init"} and volume in _mounts(other).values()]
    assert others == [], others
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_notary_signs_with_a_key_made_once_in_its_own_volume(
        services: dict[str, Any]) -> None:
    notary, keys = services["notary"], services["notary-keys"]
    assert notary["command"] == ["audit", "notary"]
    assert keys["command"] == ["audit", "keygen", "--out", "/keys", "--if-missing"]
    key_file = notary["environment"]["JITWATCH_AUDIT_SIGNING_KEY_FILE"]
    assert key_file == "/keys/notary.key"
    assert _volume_of(notary, key_file) == _mounts(keys)["/keys"] == "notary-keys"
    assert notary["depends_on"]["notary-keys"]["condition"] == "service_completed_successfully"
    users = [name for name, other in services.items()
             if "notary-keys" in _mounts(other).values()]
    assert sorted(users) == ["notary", "notary-keys"]


def test_ops_redis_acl_writes_default_off_and_one_user_per_role(tmp_path: Path) -> None:
    files = {role: tmp_path / "secrets" / f"redis-{role}.password" for role in _roles()}
    args = [str(ACL_SCRIPT), str(tmp_path / "users.acl"),
            *[f"{role}={path}" for role, path in files.items()]]
    subprocess.run(args, check=True)
    lines = (tmp_path / "users.acl").read_text().splitlines()
    assert lines[0].startswith("user default off ")
    assert [line.split()[1] for line in lines[1:]] == [f"jitwatch-{r}" for r in _roles()]
    assert (tmp_path / "users.acl").stat().st_mode & 0o777 == 0o600
    passwords = {role: path.read_text() for role, path in files.items()}
    for role, path in files.items():
        assert path.stat().st_mode & 0o777 == 0o600
        assert passwords[role] not in "\n".join(lines)
    sink = next(line for line in lines if line.startswith("user jitwatch-sink "))
    assert "-@all" in sink
    assert "+flushall" not in sink
    subprocess.run(args, check=True)  # again: passwords are kept
    assert {role: path.read_text() for role, path in files.items()} == passwords
    missing = subprocess.run(args[:-1], capture_output=True, text=True, check=False)
    assert missing.returncode == 2
    assert "no password file for role" in missing.stderr
