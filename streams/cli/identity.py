"""The enforcer as an identity: ``jitwatch acls`` (apply the declared ACLs), ``whoami`` (who
it runs as), ``keygen`` and ``sign`` (keys and signatures of reviews, lock releases and
policies)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.errors import ConfigError
from streams.cli.support import Commands
from streams.printable import printable
from streams.settings import Settings

__all__ = ["cmd_acls", "cmd_keygen", "cmd_sign", "cmd_whoami", "inventory", "register"]

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger(__name__)


def cmd_acls(settings: Settings, args: argparse.Namespace) -> int:
    """``jitwatch acls apply|show``: create the file's ACLs (as admin), or print them."""
    from streams.kafka.acls import acl_bindings, apply_acls, load_principals
    from streams.kafka.admin import wait_for_broker

    principals = load_principals(args.file or settings.principals_file)
    bindings = acl_bindings(principals, settings.topics, settings.audit.audit_group,
                            only=args.principal)
    if args.action == "show":
        for binding in bindings:
            print(binding)
        return 0

    async def run() -> None:
        admin = await wait_for_broker(settings.kafka, settings.topics)
        try:
            await apply_acls(admin, bindings)
        finally:
            await admin.close()

    asyncio.run(run())
    for binding in bindings:
        print(binding)
    print(f"{len(bindings)} ACL bindings in force for {len(principals.principals)} principals")
    return 0


async def _granted(settings: Settings) -> tuple[str, list[str]]:
    """(where from, ACL lines) of this principal: the broker when it lets us ask, else the
    principals file."""
    from aiokafka.errors import KafkaError

    from streams.kafka.acls import acl_bindings, describe_acls, load_principals
    from streams.kafka.admin import wait_for_broker

    principal = settings.kafka_principal
    refusal = "no broker asked"
    try:
        admin = await wait_for_broker(settings.kafka, settings.topics, timeout_s=10)
        try:
            bindings = await describe_acls(admin, principal)
            return f"broker {settings.kafka_bootstrap}", [str(b) for b in bindings]
        finally:
            await admin.close()
    except (ConfigError, KafkaError, OSError) as exc:
        refusal = str(exc).split(" (error")[0]
    user = principal.removeprefix("User:")
    try:
        principals = load_principals(settings.principals_file)
        lines = [str(b) for b in acl_bindings(principals, settings.topics,
                                              settings.audit.audit_group, only=user)]
    except ConfigError as exc:
        return f"unknown ({refusal}; {exc})", []
    return f"{settings.principals_file} (the broker said: {refusal})", lines


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


async def _audit_view(settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Newest entry of every audit chain (one per decisions partition), or why none; and
    the policy loads the workers recorded (:func:`_recorded_loads`)."""
    from redis.exceptions import RedisError

    from streams.audit.keys import redis_for, stream_key

    heads: dict[str, Any] = {}
    client = redis_for(settings.audit, "verifier")  # read-only: the auditor's own ACL user
    try:
        for partition in range(settings.topic_partitions):
            key = stream_key(settings.audit_key_prefix, partition)
            newest = await client.xrevrange(key, count=1)
            if not newest:
                continue
            entry_id, fields = newest[0]
            head: dict[str, Any] = {"entry": _text(entry_id), "length": await client.xlen(key)}
            for name in (b"seq", b"hash"):
                if fields and name in fields:
                    head[name.decode()] = _text(fields[name])
            heads[key] = head
        loads = await _recorded_loads(client, settings)
    except (RedisError, OSError) as exc:
        return {"error": f"Redis at {settings.redis_url.split('@')[-1]} unreadable: {exc}"}, []
    finally:
        await client.aclose()
    return heads, loads


_LOADS_SHOWN = 5


async def _recorded_loads(client: Any, settings: Settings) -> list[dict[str, Any]]:
    """Per worker, its newest policy-load record in the audit trail and the policy it left
    in force, newest first (at most :data:`_LOADS_SHOWN` workers): what running workers
    enforce, which this shell's settings need not name. Load records carry the app id as
    their subject, so the sink's subject index finds them without a scan."""
    from schemas.policy_load import is_policy_load
    from streams.audit.query import Filters, query

    newest: dict[str, dict[str, Any]] = {}
    found = await query(client, settings.audit_key_prefix, settings.topic_partitions,
                        Filters(subject=settings.app_id))
    for record in (item.decision for item in reversed(found)):  # newest first, by time
        worker = str(record.get("worker"))
        if not is_policy_load(record) or worker in newest:
            continue
        # A refused reload leaves the old policy in force.
        in_force = record.get("new" if record.get("outcome") == "loaded" else "old") or {}
        newest[worker] = {"at": record.get("at"), "worker": worker,
                          "outcome": record.get("outcome"), "version": in_force.get("version"),
                          "sha256": in_force.get("sha256")}
        if len(newest) == _LOADS_SHOWN:
            break
    return list(newest.values())


def inventory(settings: Settings, policy_file: Path | None) -> dict[str, Any]:
    """What an auditor asks first: who, what it may touch, which policy, audit heads."""
    from streams.control.policy import PolicyControl

    async def gather() -> tuple[tuple[str, list[str]], tuple[dict[str, Any],
                                                              list[dict[str, Any]]],
                                dict[str, Any] | None]:
        token = None
        if settings.kafka_sasl_mechanism == "OAUTHBEARER":
            from streams.kafka.oauth import token_identity

            token = await token_identity(settings.kafka)
        return await _granted(settings), await _audit_view(settings), token

    (source, acls), (heads, loads), token = asyncio.run(gather())
    try:
        policy: dict[str, Any] = PolicyControl(
            policy_file or settings.policy_file, settings.policy_signers_file).current.summary()
    except ConfigError as exc:
        policy = {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - whoami reports, it does not stop at a bad policy
        policy = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "principal": (token or {}).get("principal") or settings.kafka_principal,
        "token": token,
        "security_protocol": settings.kafka_security_protocol,
        "bootstrap": settings.kafka_bootstrap,
        "app_id": settings.app_id,
        "consumer_group": settings.app_id,
        "topics": {"reads": [settings.topic_requests, settings.topic_sessions,
                             settings.topic_commands],
                   "writes": [settings.topic_decisions, settings.topic_deadletter,
                              settings.topic_notices,
                              settings.topic_commands, f"{settings.app_id}-grants-changelog"]},
        "acls": {"source": source, "bindings": acls},
        "policy": policy,
        "policy_signers_file": str(settings.policy_signers_file or "") or None,
        "audit_heads": heads,
        "policy_loads": loads,
    }


def _show(line: str) -> None:
    """Print one line of ``whoami``'s text, escaped (:func:`streams.printable.printable`)."""
    print(printable(line))


def cmd_whoami(settings: Settings, args: argparse.Namespace) -> int:
    """``jitwatch whoami``: the worker's identity, reach, policy and audit heads."""
    import orjson

    found = inventory(settings, args.policy)
    if args.json:
        print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return 0
    # Worker names, versions, ACL lines, errors and head fields come from the broker, the
    # audit trail and files others write: every line is shown escaped, so none of them can
    # add a line or drive the terminal (our own text has nothing to escape).
    _show(f"principal      {found['principal']} ({found['security_protocol']} to "
          f"{found['bootstrap']})")
    token = found.get("token")
    if token is not None:  # issue 23: who the token says we are and how long; never itself
        if "error" in token:
            _show(f"token          NONE: {token['error']}")
        else:
            _show(f"token          issuer {token['issuer']}, audience {token['audience']}")
            _show(f"  expires      {token['expires']}; next refresh {token['refresh_at']}")
        _show(f"  from         {token['source']}")
    _show(f"worker group   {found['consumer_group']} (changelogs and commands: "
          f"{found['app_id']}-*)")
    _show(f"reads          {', '.join(found['topics']['reads'])}")
    _show(f"writes         {', '.join(found['topics']['writes'])}")
    _show(f"ACLs from      {found['acls']['source']}")
    for line in found["acls"]["bindings"] or ["(none)"]:
        _show(f"  {line}")
    policy = found["policy"]
    if "error" in policy:
        _show(f"policy         NOT LOADABLE: {policy['error']}")
    else:
        _show(f"policy         {policy['version']} sha256 {policy['sha256']}")
        _show(f"  signed by    {policy['signer'] or 'nobody (no signers configured)'}"
              f"{' key ' + policy['key_id'] if policy['key_id'] else ''}; {policy['source']}")
        # This shell's settings, which need not be a running worker's: the workers' own
        # load records follow.
        _show("  (as this shell's settings name it)")
    _show("policy loads   newest per worker, as recorded in the audit trail")
    for load in found["policy_loads"]:
        same = "" if "error" in policy else \
            " (the same)" if load["sha256"] == policy["sha256"] else " (DIFFERS from above)"
        _show(f"  {load['at']} {load['worker']} {load['outcome']}; enforces "
              f"{load['version']} sha256 {str(load['sha256'])[:12]}…{same}")
    if not found["policy_loads"]:
        _show("  (none recorded: no worker started since the audit sink ran, or Redis is "
              "unreadable)")
    _show("audit heads")
    heads = found["audit_heads"]
    if "error" in heads:
        _show(f"  {heads['error']}")
    for key, head in sorted(heads.items()):
        if key != "error":
            extra = "".join(f" {name} {head[name]}" for name in ("hash", "chain", "head")
                            if name in head)
            _show(f"  {key}: {head['length']} entries, last {head['entry']}{extra}")
    if not heads:
        _show("  (none yet)")
    return 0


def cmd_keygen(settings: Settings, args: argparse.Namespace) -> int:
    """``jitwatch keygen --out FILE``: a new Ed25519 key (PEM, mode 600); prints the public
    key as a policy or signers file lists it."""
    from policy.signatures import public_key_b64
    from streams.control.keys import write_private_key

    key = write_private_key(args.out)
    print(f'public_key = "{public_key_b64(key.public_key())}"')
    return 0


def cmd_sign(settings: Settings, args: argparse.Namespace) -> int:
    """``jitwatch sign review|release|policy``: sign a review or a lock release (stdin JSON
    to stdout) or a policy (writes FILE.sig)."""
    import sys

    import orjson

    from streams.control.keys import read_private_key
    from streams.control.policy import sign_policy

    key = read_private_key(args.key)
    if args.what == "policy":
        if args.file is None:
            raise ConfigError("jitwatch sign policy needs the policy FILE")
        print(f"wrote {sign_policy(args.file, args.key_id, key, args.rollback)}")
        return 0
    raw = orjson.loads(sys.stdin.buffer.read())
    if not isinstance(raw, dict):
        raise ConfigError(f"jitwatch sign {args.what} reads one JSON event on stdin")
    raw = {**raw, "key_id": args.key_id}
    raw["signature"] = (_sign_review(raw, args.request, key) if args.what == "review"
                        else _sign_release(raw, key))
    sys.stdout.buffer.write(orjson.dumps(raw) + b"\n")
    return 0


def _sign_review(raw: dict[str, Any], request: Path | None,
                 key: Ed25519PrivateKey) -> str:
    """The signature of a request.reviewed over the request it decides: the digest of the
    ``--request`` file's request.created, else the review's own ``request_digest`` field."""
    from policy import request_digest, sign_review
    from schemas.events import INPUT_EVENT, RequestCreated, RequestReviewed

    review = INPUT_EVENT.validate_python(raw)
    if not isinstance(review, RequestReviewed):
        raise ConfigError("jitwatch sign review reads one request.reviewed event on stdin")
    if request is not None:
        asked = INPUT_EVENT.validate_json(request.read_bytes())
        if not isinstance(asked, RequestCreated):
            raise ConfigError(f"{request}: not a request.created event")
        if (asked.request_id, asked.subject.id, asked.tenant) != (
                review.request_id, review.subject.id, review.tenant):
            raise ConfigError(f"{request}: request {asked.request_id} of {asked.subject.id} "
                              f"in {asked.tenant} is not the one the review decides")
        digest = request_digest(asked)
        if raw.get("request_digest") not in (None, digest):
            raise ConfigError("the review's request_digest differs from --request's")
    elif isinstance(raw.get("request_digest"), str):
        digest = raw["request_digest"]
    else:
        raise ConfigError("jitwatch sign review needs the request it decides: --request FILE "
                          "(its request.created) or a request_digest field in the review")
    return sign_review(review, review.key_id or "", key, digest)


def _sign_release(raw: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """The signature of a lock.released; its ``by`` must be the operator the key is for."""
    from policy import sign_release
    from schemas.events import INPUT_EVENT, LockReleased

    release = INPUT_EVENT.validate_python(raw)
    if not isinstance(release, LockReleased) or release.by is None:
        raise ConfigError("jitwatch sign release reads one lock.released event, with the "
                          "operator's id in by, on stdin")
    return sign_release(release, release.key_id or "", key)


def register(commands: Commands) -> None:
    """Add ``acls``, ``whoami``, ``keygen`` and ``sign`` to the ``jitwatch`` parser."""
    acls = commands.add_parser(
        "acls", help="apply (as admin) or show the Kafka ACLs of the principals file")
    acls.add_argument("action", choices=["apply", "show"])
    acls.add_argument("--file", type=Path,
                      help="principals file (default JITWATCH_PRINCIPALS_FILE, "
                      "ops/principals.toml)")
    acls.add_argument("--principal", help="only this principal's ACLs")
    acls.set_defaults(run=cmd_acls)

    whoami = commands.add_parser(
        "whoami", help="the principal, its topics and groups, the policy and audit heads")
    whoami.add_argument("--policy", type=Path, help="policy TOML (default JITWATCH_POLICY_FILE)")
    whoami.add_argument("--json", action="store_true", help="one JSON document")
    whoami.set_defaults(run=cmd_whoami)

    keygen = commands.add_parser("keygen", help="make an Ed25519 key for reviews or policies "
                                 "(the notary's: `jitwatch audit keygen`)")
    keygen.add_argument("--out", type=Path, required=True, help="private key file (mode 600)")
    keygen.set_defaults(run=cmd_keygen)

    sign = commands.add_parser(
        "sign", help="sign a review or a lock release (stdin JSON -> stdout) or a policy "
        "(writes FILE.sig)")
    sign.add_argument("what", choices=["review", "release", "policy"])
    sign.add_argument("file", type=Path, nargs="?", help="the policy file (sign policy)")
    sign.add_argument("--request", type=Path,
                      help="sign review: the request.created JSON the review decides (its "
                      "digest is signed); without it, the review's request_digest field")
    sign.add_argument("--rollback", metavar="FROM_VERSION",
                      help="sign policy: sign it as a rollback from FROM_VERSION, the version "
                      "in force it replaces (needed when its version is not greater)")
    sign.add_argument("--key", type=Path, required=True, help="private key from keygen")
    sign.add_argument("--key-id", required=True, help="the key's id as the policy/signers "
                      "file lists it")
    sign.set_defaults(run=cmd_sign)

