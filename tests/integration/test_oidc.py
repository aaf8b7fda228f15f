"""The enforcer on short-lived credentials (issue 23), on the broker of ``ops/stack up --auth
oidc``: SASL/OAUTHBEARER checked against the local issuer's JWKS, tokens of
``JITWATCH_OIDC_TOKEN_TTL`` s (20 in ops/test), one client per principal.

- the broker refuses expired, wrong-audience, wrong-issuer and forged tokens, and jitwatch
  says which and why;
- the ACL matrix of test_auth holds with every principal on tokens;
- the worker decides across at least three token lifetimes and an issuer key rotation, the
  broker cutting its connections as their tokens expire, with decisions equal to the oracle's
  (nothing lost, nothing duplicated);
- a client revoked at the issuer is cut off within one token lifetime;
- Redis passwords rotate with an overlap and the sink follows without a restart.

The module is over 400 lines: the scenarios share the OIDC stack's fixtures, logins and
issuer helpers, which would otherwise be a second module imported by this one alone.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.abc import AbstractTokenProvider

from streams.kafka.oauth import TokenProvider, install_refusal_check, token_provider
from streams.settings import load_settings
from tests.integration import auth_stack
from tests.integration import test_auth as scram_tests
from tests.integration.auth_stack import AuthStack, auth_stack_session, read_all
from tests.integration.conftest import REPO, Producer, _reachable
from tests.integration.test_equivalence import POLICY, publish_paced, scenario
from tests.oracle import compare, simulated
from tests.requires import unavailable

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ.get("JITWATCH_OIDC_KAFKA_BOOTSTRAP", "")
STACK = Path(os.environ.get("JITWATCH_OIDC_STACK_DIR", REPO / ".stack-oidc"))
ISSUER = os.environ.get("JITWATCH_OIDC_ISSUER", "")
TTL = float(os.environ.get("JITWATCH_OIDC_TOKEN_TTL", "20"))
SECRETS = STACK / "secrets"


def _require() -> None:
    if BOOTSTRAP and ISSUER and _reachable(BOOTSTRAP) and (SECRETS / "admin.password").is_file():
        return
    message = ("no OIDC broker: set JITWATCH_OIDC_KAFKA_BOOTSTRAP, JITWATCH_OIDC_ISSUER and "
               "JITWATCH_OIDC_STACK_DIR (ops/test starts one with `ops/stack up --auth oidc`)")
    unavailable(message)


def oidc_env(user: str) -> dict[str, str]:
    """JITWATCH_* settings that make a jitwatch process get tokens as ``user`` (admin keeps
    its SCRAM password: the broker's own login)."""
    if user == "admin":
        return {"JITWATCH_KAFKA_BOOTSTRAP": BOOTSTRAP,
                "JITWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "JITWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "JITWATCH_KAFKA_SASL_USERNAME": "admin",
                "JITWATCH_KAFKA_SASL_PASSWORD_FILE": str(SECRETS / "admin.password")}
    return {"JITWATCH_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "JITWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "JITWATCH_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            "JITWATCH_KAFKA_OAUTH_TOKEN_ENDPOINT": f"{ISSUER}/token",
            "JITWATCH_KAFKA_OAUTH_CLIENT_ID": user,
            "JITWATCH_KAFKA_OAUTH_CLIENT_SECRET_FILE": str(SECRETS / f"{user}.client-secret")}


def _kafka_of(env: dict[str, str]) -> Any:
    names = {key.removeprefix("JITWATCH_").lower(): value for key, value in env.items()}
    return load_settings(**names).kafka


def oidc_options(user: str | None, secret: str | None = None) -> dict[str, Any]:
    """aiokafka options for ``user`` on the OIDC broker (the probes of auth_stack use them)."""
    if user is None:
        return {"bootstrap_servers": BOOTSTRAP}
    if user == "admin" or secret is not None:
        return {"bootstrap_servers": BOOTSTRAP, "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user,
                "sasl_plain_password": secret or (SECRETS / "admin.password").read_text().strip()}
    return {"bootstrap_servers": BOOTSTRAP, "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "OAUTHBEARER",
            "sasl_oauth_token_provider": token_provider(_kafka_of(oidc_env(user)))}


def _session(tmp: Path) -> Iterator[AuthStack]:
    """test_auth's session helpers and probes, pointed at the OIDC broker."""
    _require()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth_stack, "AUTH_BOOTSTRAP", BOOTSTRAP)
        patch.setattr(auth_stack, "SECRETS", SECRETS)
        patch.setattr(auth_stack, "client_options", oidc_options)
        patch.setattr(auth_stack, "principal_env", oidc_env)
        yield from auth_stack_session(tmp)


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    """One session's names for the probes (the matrix leaves probe records in them)."""
    yield from _session(tmp_path_factory.mktemp("oidc"))


@pytest.fixture
def clean_oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    """Names of its own, for a test that runs a worker."""
    yield from _session(tmp_path_factory.mktemp("oidc-clean"))


def issuer(*args: str) -> str:
    """Run ops/oidc_issuer.py on the stack's issuer state (mint, rotate, revoke, client)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(REPO / "ops" / "oidc_issuer.py"), args[0],
                           "--dir", str(STACK / "oidc"), *args[1:]],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


class Fixed(AbstractTokenProvider):  # type: ignore[misc]
    """Hands out one given token: what a careless or hostile client would send."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token


async def _accepted(token: str) -> bool:
    install_refusal_check()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, security_protocol="SASL_PLAINTEXT",
                                sasl_mechanism="OAUTHBEARER",
                                sasl_oauth_token_provider=Fixed(token), request_timeout_ms=5000)
    try:
        await producer.start()
    except Exception:  # noqa: BLE001 - refused at bootstrap: that is the point
        return False
    finally:
        await producer.stop()
    return True


def _new_client(name: str) -> Path:
    """A new client at the issuer, and its own copy of the secret (as a workload holds it)."""
    secret = Path(issuer("client", name))
    own = SECRETS / f"{name}.client-secret"
    own.write_text(secret.read_text())
    return own


def _rotate_redis_secrets(port: str, secret: Path) -> tuple[str, str, str]:
    """(old password, new password, what the command printed) of ops/stack rotate-secrets
    with a 3 s overlap on the OIDC stack's Redis."""
    import subprocess

    old = secret.read_text().strip()
    rotated = subprocess.run(
        [str(REPO / "ops" / "stack"), "rotate-secrets", "--overlap", "3"], cwd=REPO,
        env={**os.environ, "JITWATCH_STACK_DIR": str(STACK), "REDIS_PORT": port},
        capture_output=True, text=True, timeout=120, check=False)
    assert rotated.returncode == 0, rotated.stderr
    return old, secret.read_text().strip(), rotated.stdout + rotated.stderr


def _jitwatch(oidc: AuthStack, env: dict[str, str], *args: str) -> Any:
    """Run a jitwatch command with exactly these Kafka settings (no token endpoint added)."""
    import subprocess
    import sys

    kafka_free = {k: v for k, v in oidc.env.items() if not k.startswith("JITWATCH_KAFKA_")}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=REPO,
                          env={**kafka_free, **env}, capture_output=True, text=True,
                          timeout=90, check=False)


async def test_broker_refuses_expired_wrong_audience_wrong_issuer_and_forged_tokens(
        oidc: AuthStack, tmp_path: Path) -> None:
    good = issuer("mint", "--sub", "upstream", "--iss", ISSUER, "--aud", "kafka")
    assert await _accepted(good)
    bad = {
        "expired": issuer("mint", "--sub", "upstream", "--iss", ISSUER, "--ttl", "-60"),
        "wrong audience": issuer("mint", "--sub", "upstream", "--iss", ISSUER, "--aud", "other"),
        "wrong issuer": issuer("mint", "--sub", "upstream", "--iss", "http://evil.example"),
        "forged": good.rsplit(".", 1)[0] + ".c2lnbmF0dXJl",
    }
    let_in = [name for name, token in bad.items() if await _accepted(token)]
    assert not let_in, f"the broker took tokens it must refuse: {let_in}"

    # jitwatch says why, names the claims and the settings, and stops (no endless retry).
    token_file = tmp_path / "svid.jwt"
    token_file.write_text(bad["wrong audience"])
    env = {**oidc_env("upstream"), "JITWATCH_KAFKA_OAUTH_TOKEN_FILE": str(token_file)}
    del env["JITWATCH_KAFKA_OAUTH_TOKEN_ENDPOINT"]
    started = time.monotonic()
    done = _jitwatch(oidc, env, "tail", "--to-end")
    assert done.returncode != 0
    assert "refused the token of 'upstream'" in done.stderr, done.stderr[-2000:]
    assert "aud 'other'" in done.stderr
    assert "sasl.oauthbearer.expected" in done.stderr
    assert bad["wrong audience"] not in done.stderr + done.stdout
    assert time.monotonic() - started < 80
    token_file.write_text(bad["expired"])
    done = _jitwatch(oidc, env, "tail", "--to-end")
    assert done.returncode != 0
    assert "expired" in done.stderr
    assert "JITWATCH_KAFKA_OAUTH_TOKEN_FILE" in done.stderr


async def test_acl_matrix_holds_with_every_principal_on_tokens(oidc: AuthStack) -> None:
    await scram_tests.test_acl_matrix_every_principal_can_do_its_job_and_nothing_more(oidc)


def test_whoami_shows_the_token_s_principal_issuer_and_times_never_the_token(
        oidc: AuthStack) -> None:
    done = oidc.jitwatch("whoami", "--json", user="watcher")
    assert done.returncode == 0, done.stderr
    found = orjson.loads(done.stdout)
    token = found["token"]
    assert found["principal"] == token["principal"] == "User:watcher"
    assert (token["issuer"], token["audience"]) == (ISSUER, "kafka")
    expires = datetime.fromisoformat(token["expires"].replace("Z", "+00:00"))
    refresh = datetime.fromisoformat(token["refresh_at"].replace("Z", "+00:00"))
    assert refresh < expires <= datetime.now(UTC) + timedelta(seconds=TTL + 2)
    assert "eyJ" not in done.stdout + done.stderr  # no JWT anywhere
    text = oidc.jitwatch("whoami", user="watcher")
    assert "next refresh" in text.stdout
    assert "eyJ" not in text.stdout + text.stderr


async def test_worker_decides_across_three_token_lifetimes_and_a_key_rotation(
        clean_oidc: AuthStack, tmp_path: Path) -> None:
    """Tokens of TTL s: the broker closes each connection when its token expires; the worker
    reconnects with a fresh token each time. Events keep coming over more than 3 TTLs, the
    issuer's key rotates half way; the stream's decisions equal simulate's."""
    tag = uuid.uuid4().hex[:6]
    worker_log = tmp_path / "worker.log"
    clean_oidc.start("worker", worker_log, "watcher")
    decisions = clean_oidc.name("topic_decisions")
    await read_all("siem", decisions, lambda found: any(
        r.get("schema") == "jit.policy-load/v1" for r in found), timeout_s=120)

    rounds = int(3 * TTL // 12) + 2  # each scenario spans 12 s
    start = datetime.now(UTC) + timedelta(seconds=1)
    events: list[dict[str, Any]] = []
    for number in range(rounds):
        events += scenario(start + timedelta(seconds=13 * number), f"{tag}-{number}",
                           seed=number, sessions=False)
    rotate_at = start + timedelta(seconds=13 * rounds / 2)

    async def rotate() -> None:
        await asyncio.sleep(max(0.0, (rotate_at - datetime.now(UTC)).total_seconds()))
        issuer("rotate")

    install_refusal_check()
    client = AIOKafkaProducer(**oidc_options("upstream"), acks="all")
    await client.start()
    try:
        producer = Producer(client, clean_oidc.name("topic_requests"))
        sessions = clean_oidc.name("topic_sessions")
        stack = type("S", (), {"env": {"JITWATCH_TOPIC_SESSIONS": sessions}})
        rotation = asyncio.create_task(rotate())
        received = await publish_paced(producer, stack, events)  # type: ignore[arg-type]
        await rotation
    finally:
        await client.stop()
    ran_s = (datetime.now(UTC) - start).total_seconds()
    assert ran_s > 3 * TTL, f"the run lasted {ran_s:.0f} s, under 3 token lifetimes"

    from tests.integration.test_equivalence import at_broker_times

    until = start + timedelta(seconds=13 * rounds + 5)
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds() + 2))
    expected = simulated(at_broker_times(events, received), POLICY, until=until)
    ours = f"eq-{tag}-"
    stream = [r for r in await read_all(
        "siem", decisions, lambda found: sum(str(r.get("subject", {}).get("id", "")).startswith(
            ours) for r in found) >= len(expected), timeout_s=120)
        if str(r.get("subject", {}).get("id", "")).startswith(ours)]
    report = compare(stream, expected)
    print(report)
    assert report.equal, str(report)
    log = worker_log.read_text(errors="replace")
    tokens = log.count("Kafka token for watcher")
    assert tokens >= 3, f"the worker fetched {tokens} tokens in {ran_s:.0f} s"
    # The broker closed the worker's connections as their tokens expired (aiokafka cannot
    # re-authenticate, KIP-368): decisions above show it lost and doubled nothing.
    cut = log.count(f"Connection at {BOOTSTRAP} closed")
    assert cut >= 2, f"the broker closed {cut} connections in {ran_s:.0f} s"
    assert "refused" not in log
    assert "eyJ" not in log  # no JWT (their header starts so) in the worker's log
    # Tokens are now signed with the new key: the rotation happened under the run.
    keys = sorted((STACK / "oidc" / "keys").glob("*.pem"))
    assert len(keys) == 2  # old and new: both in the JWKS
    fresh = await TokenProvider(_kafka_of(oidc_env("siem"))).token()
    header = orjson.loads(base64.urlsafe_b64decode(fresh.split(".")[0] + "=="))
    assert header["kid"] == keys[-1].stem.split("-", 1)[1]


async def test_a_client_revoked_at_the_issuer_is_cut_off_within_one_token_lifetime(
        oidc: AuthStack) -> None:
    name = f"revokee-{oidc.run}"
    own = _new_client(name)
    env = {**oidc_env("upstream"), "JITWATCH_KAFKA_OAUTH_CLIENT_ID": name,
           "JITWATCH_KAFKA_OAUTH_CLIENT_SECRET_FILE": str(own)}
    provider = token_provider(_kafka_of(env))
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, security_protocol="SASL_PLAINTEXT",
                                sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=provider,
                                request_timeout_ms=5000, metadata_max_age_ms=1000)
    await producer.start()
    try:
        # No ACL for this client: describing the cluster is all it can do, which needs a
        # live session. Poll until the broker stops answering it.
        await producer.client.force_metadata_update()
        issuer("revoke", name)
        revoked = time.monotonic()
        cut = None
        while time.monotonic() - revoked < 2 * TTL + 10:
            try:
                await asyncio.wait_for(producer.client.fetch_all_metadata(), 3)
            except Exception:  # noqa: BLE001 - the refusal, whichever way it shows
                cut = time.monotonic() - revoked
                break
            await asyncio.sleep(0.5)
        assert cut is not None, "still served 2 token lifetimes after the revocation"
        assert cut <= TTL + 3, f"cut off {cut:.1f} s after revocation; tokens live {TTL:g} s"
        print(f"revoked client cut off after {cut:.1f} s (token life {TTL:g} s)")
    finally:
        await producer.stop()
        own.unlink(missing_ok=True)


async def test_redis_passwords_rotate_with_an_overlap_and_the_sink_follows_without_restart(
        clean_oidc: AuthStack, tmp_path: Path) -> None:
    """``ops/stack rotate-secrets``: each Redis ACL user gets a new password next to the old,
    the files are rewritten, the old one goes after the overlap. The sink, cut off from
    Redis afterwards, logs in again with the new password from its file: no restart."""
    import redis.asyncio as aioredis
    from redis.exceptions import AuthenticationError

    from streams.audit import stream_key

    port = os.environ.get("JITWATCH_OIDC_REDIS_PORT", "6381")
    url = f"redis://127.0.0.1:{port}/0"
    secret = SECRETS / "redis-sink.password"
    env = {"JITWATCH_REDIS_URL": url, "JITWATCH_REDIS_USER": "jitwatch-sink",
           "JITWATCH_REDIS_PASSWORD_FILE": str(secret)}
    clean_oidc.start("worker", tmp_path / "worker.log", "watcher")
    sink = clean_oidc.start("audit-sink", tmp_path / "sink.log", "audit", **env)

    def admin() -> aioredis.Redis:
        return aioredis.Redis.from_url(url, username="jitwatch-admin", password=(
            SECRETS / "redis-admin.password").read_text().strip())

    async def entries() -> int:
        client = admin()
        try:
            return sum([await client.xlen(stream_key(clean_oidc.name("audit_key_prefix"), p))
                        for p in range(2)])
        finally:
            await client.aclose()

    async def grows_past(count: int, timeout_s: float = 90) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = await entries()
            if now > count:
                return now
            await asyncio.sleep(0.5)
        raise AssertionError(f"the audit chain stayed at {count} entries; sink log:\n"
                             + (tmp_path / "sink.log").read_text(errors="replace")[-3000:])

    async def publish(number: int) -> None:
        producer = AIOKafkaProducer(**oidc_options("upstream"), acks="all")
        await producer.start()
        try:
            event = {"type": "request.created", "event_id": f"rot-{clean_oidc.run}-{number}",
                     "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                     "tenant": "default", "subject": {"id": f"rot-{clean_oidc.run}"},
                     "request_id": f"r-rot-{number}", "reason": "rotation", "ttl_s": 60,
                     "resources": [{"id": "res-1", "env": "research", "sensitivity": "low"}]}
            await producer.send_and_wait(clean_oidc.name("topic_requests"),
                                         orjson.dumps(event), key=f"rot-{clean_oidc.run}".encode())
        finally:
            await producer.stop()

    before = await grows_past(0)  # the worker's policy-load record, at least
    old, new, said = _rotate_redis_secrets(port, secret)
    assert new != old
    assert old not in said
    assert new not in said
    stale = aioredis.Redis.from_url(url, username="jitwatch-sink", password=old)
    try:
        with pytest.raises(AuthenticationError):  # the old one is gone after the overlap
            await stale.ping()
    finally:
        await stale.aclose()
    client = admin()  # cut the sink's connections: it must log in again
    try:
        assert await client.client_kill_filter(user="jitwatch-sink") >= 1
    finally:
        await client.aclose()
    await publish(1)
    await grows_past(before)
    assert sink.poll() is None, "the sink stopped"
    log = (tmp_path / "sink.log").read_text(errors="replace")
    assert old not in log
    assert new not in log
