"""The enforcer as an identity: apply the declared ACLs, and say who it runs as (``whoami``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError
from streams.settings import Settings

__all__ = ["cmd_acls", "cmd_keygen", "cmd_sign", "read_private_key", "register_commands"]

log = logging.getLogger(__name__)


def cmd_acls(settings: Settings, args: argparse.Namespace) -> int:
    """``jitwatch acls apply|show``: create the file's ACLs (as admin), or print them."""
    from streams.admin import wait_for_broker
    from streams.principals import acl_bindings, apply_acls, load_principals

    principals = load_principals(args.file or settings.principals_file)
    bindings = acl_bindings(principals, settings, only=args.principal)
    if args.action == "show":
        for binding in bindings:
            print(binding)
        return 0

    async def run() -> None:
        admin = await wait_for_broker(settings)
        try:
            await apply_acls(admin, bindings)
        finally:
            await admin.close()

    asyncio.run(run())
    for binding in bindings:
        print(binding)
    print(f"{len(bindings)} ACL bindings in force for {len(principals.principals)} principals")
    return 0


def read_private_key(path: Path) -> Any:
    """An Ed25519 private key from a file holding base64 of its 32-byte seed.

    Raises:
        ConfigError: naming the file (never its content).
    """
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        return Ed25519PrivateKey.from_private_bytes(
            base64.b64decode(path.read_text(encoding="utf-8").strip(), validate=True))
    except (OSError, ValueError, binascii.Error) as exc:
        raise ConfigError(f"{path} is not a key file from `jitwatch keygen` "
                          f"({type(exc).__name__})") from exc


def cmd_keygen(settings: Settings, args: argparse.Namespace) -> int:
    """``jitwatch keygen --out FILE``: a new Ed25519 key (mode 600); prints the public key."""
    import base64
    import os

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(base64.b64encode(seed).decode() + "\n")
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    print(f'public_key = "{base64.b64encode(public).decode()}"')
    return 0


def cmd_sign(settings: Settings, args: argparse.Namespace) -> int:
    """``jitwatch sign review|policy``: sign a review (stdin JSON to stdout) or a policy."""
    import sys

    import orjson

    from policy.reviews import sign_review
    from schemas.events import INPUT_EVENT, RequestReviewed
    from streams.policy_control import sign_policy

    key = read_private_key(args.key)
    if args.what == "policy":
        if args.file is None:
            raise ConfigError("jitwatch sign policy needs the policy FILE")
        print(f"wrote {sign_policy(args.file, args.key_id, key)}")
        return 0
    raw = {**orjson.loads(sys.stdin.buffer.read()), "key_id": args.key_id}
    review = INPUT_EVENT.validate_python(raw)
    if not isinstance(review, RequestReviewed):
        raise ConfigError("jitwatch sign review reads one request.reviewed event on stdin")
    raw["signature"] = sign_review(review, args.key_id, key)
    sys.stdout.buffer.write(orjson.dumps(raw) + b"\n")
    return 0


def register_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the identity commands to the ``jitwatch`` parser."""
    acls = commands.add_parser(
        "acls", help="apply (as admin) or show the Kafka ACLs of the principals file")
    acls.add_argument("action", choices=["apply", "show"])
    acls.add_argument("--file", type=Path,
                      help="principals file (default JITWATCH_PRINCIPALS_FILE, "
                      "ops/principals.toml)")
    acls.add_argument("--principal", help="only this principal's ACLs")
    acls.set_defaults(run=cmd_acls)

    keygen = commands.add_parser("keygen", help="make an Ed25519 key for reviews or policies")
    keygen.add_argument("--out", type=Path, required=True, help="private key file (mode 600)")
    keygen.set_defaults(run=cmd_keygen)

    sign = commands.add_parser(
        "sign", help="sign a review (stdin JSON -> stdout) or a policy (writes FILE.sig)")
    sign.add_argument("what", choices=["review", "policy"])
    sign.add_argument("file", type=Path, nargs="?", help="the policy file (sign policy)")
    sign.add_argument("--key", type=Path, required=True, help="private key from keygen")
    sign.add_argument("--key-id", required=True, help="the key's id as the policy/signers "
                      "file lists it")
    sign.set_defaults(run=cmd_sign)

