"""``jitwatch audit {sink,notary,verify,query,export,keygen}`` and ``jitwatch audit-sink``:
the auditors' command line. Each command returns its exit code; the audit package itself
(streams/audit/) knows nothing of argparse.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, get_args

import orjson

from schemas.decisions import Action
from schemas.errors import JitwatchError
from streams.cli.support import Commands, run_until_signal, utc_time
from streams.settings import Settings

T = TypeVar("T")

__all__ = ["register"]


def _redis_run(settings: Settings, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an auditor's command (as the read-only verifier); Redis unreachable, still
    loading or refusing the login is a clear error, not a traceback."""
    from redis.exceptions import AuthenticationError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    try:
        return asyncio.run(main())
    except AuthenticationError as exc:  # a ConnectionError in redis-py: first
        raise JitwatchError(
            f"Redis at {settings.redis_url} refused the verifier's login ({exc}); set "
            "JITWATCH_VERIFIER_REDIS_USER and JITWATCH_VERIFIER_REDIS_PASSWORD_FILE (for the "
            'local stack: eval "$(ops/stack env)")') from exc
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise JitwatchError(f"cannot read the audit trail from Redis at {settings.redis_url} "
                            f"({exc.__class__.__name__}: {exc}); nothing was read, try again "
                            "(ops/stack up starts the local one)") from exc


def _keygen(settings: Settings, args: argparse.Namespace) -> int:
    from streams.audit.notary import generate_keys

    private, public = generate_keys(args.out, keep_existing=args.if_missing)
    print(f"wrote {private} (private, mode 0600: give it to the notary only)")
    print(f"wrote {public} (public: give it to auditors for `jitwatch audit verify`)")
    print("rotating the notary's key: see `jitwatch audit keygen --help`")
    return 0


KEY_ROTATION = """\
Rotating the notary's key (checkpoints carry the id of the key that signed them, so those
signed before a rotation keep verifying after it):
  1. jitwatch audit keygen --out NEWDIR            (a new pair; never overwrites)
  2. stop the notary, point JITWATCH_AUDIT_SIGNING_KEY_FILE at NEWDIR/notary.key, start it
     (its next checkpoint links to the last one signed with the old key)
  3. give auditors NEWDIR/notary.pub and keep the old notary.pub: verify with both,
     --public-key OLD.pub --public-key NEW.pub, or a keys file (--keys) that bounds each
     key's use, so a retired key cannot sign later checkpoints:
       [[keys]]
       file = "old.pub"
       valid_until = "2027-01-01T00:00:00Z"   (the rotation time)
       [[keys]]
       file = "new.pub"
       valid_from = "2027-01-01T00:00:00Z"
  4. destroy the old private key once the new one signs."""


def _tamper_stop(who: str, main: Callable[[], None]) -> int:
    """Run a sink or notary; a tamper stop is exit 3 with a line of its own, apart from any
    other error, so it is never mistaken for a crash to restart away."""
    from streams.audit.chain import AuditTamperError
    from streams.audit.sink import TAMPER_EXIT

    try:
        main()
    except AuditTamperError as exc:
        print(f"jitwatch: TAMPER STOP ({who}): {exc}", file=sys.stderr)
        return TAMPER_EXIT
    return 0


def _sink(settings: Settings, args: argparse.Namespace) -> int:
    """``jitwatch audit sink`` (and ``audit-sink``): run the sink until a signal."""
    from streams.audit import run_audit_sink

    return _tamper_stop("audit sink", lambda: run_until_signal(
        lambda stop: run_audit_sink(settings.audit, settings.kafka, settings.topics, stop,
                                    settings.web)))


def _notary(settings: Settings, args: argparse.Namespace) -> int:
    from streams.audit.notary import run_notary

    return _tamper_stop("notary", lambda: run_until_signal(
        lambda stop: run_notary(settings.audit, settings.kafka, settings.topics, stop,
                                settings.web)))


def _keyring(settings: Settings, args: argparse.Namespace) -> Any:
    """The notary's keyring: every ``--public-key``, the ``--keys`` file's keys, else
    ``JITWATCH_AUDIT_VERIFY_KEY_FILE``."""
    from streams.audit.keyring import Keyring
    from streams.audit.notary import load_public_key

    ring = Keyring.of(*(load_public_key(path) for path in args.public_key or []))
    if args.keys is not None:
        ring += Keyring.from_file(args.keys)
    return ring if ring.keys else Keyring.of(load_public_key(settings.audit_verify_key_file))


def _unsigned_limits(settings: Settings, args: argparse.Namespace) -> Any:
    from datetime import UTC, datetime

    from streams.audit.against import UnsignedLimits

    age = args.max_unsigned_age if args.max_unsigned_age is not None else \
        2 * settings.audit_checkpoint_interval_s
    most = args.max_unsigned if args.max_unsigned is not None else \
        2 * settings.audit_checkpoint_every
    return UnsignedLimits(datetime.now(UTC), age, most)


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from streams.audit.keys import redis_for
    from streams.audit.verify import (
        ExportError,
        VerifyReport,
        kafka_consumer_options,
        verify_export,
        verify_redis,
    )

    keyring = _keyring(settings, args)
    report: VerifyReport
    if args.export is not None:
        try:
            with args.export.open("rb") as handle:
                report = verify_export(handle, keyring, _unsigned_limits(settings, args))
        except OSError as exc:
            raise JitwatchError(f"cannot read the export {args.export}: {exc.strerror}") from exc
        except ExportError as exc:
            print(f"{exc.verdict.upper()}: {args.export}: {exc}", file=sys.stderr)
            return 1 if exc.verdict == "tampered" else 2
    else:
        async def run() -> VerifyReport:
            client = redis_for(settings.audit, "verifier")
            try:
                return await verify_redis(
                    client, settings.audit_key_prefix, settings.topic_partitions, keyring,
                    kafka_consumer_options(settings.kafka) if args.against_kafka else None,
                    settings.topic_decisions, _unsigned_limits(settings, args),
                    settings.topic_audit_checkpoints)
            finally:
                await client.aclose()

        report = _redis_run(settings, run)
    for part in report.partitions:
        if args.allow_unsigned and part.problem is not None and \
                part.problem.verdict == "unsigned":
            part.notes.append(f"allowed: {part.problem.what}")
            part.problem = None
        print(part.line())
    verdict = {0: "INTACT", 1: "TAMPERED", 2: "INCOMPLETE"}[report.exit_code]
    first = f": first bad entry: {report.problems[0].located}" if report.problems else ""
    print(f"{verdict}{first}", file=sys.stderr if report.exit_code else sys.stdout)
    return report.exit_code


def _filters(args: argparse.Namespace) -> Any:
    from streams.audit.query import Filters

    return Filters(subject=args.subject, request=args.request, action=args.action,
                   rule=args.rule, since=args.since, until=args.until, limit=args.limit)


def _warn_unknown_rule(rule: str | None) -> None:
    """A rule id no rule has finds nothing: say so, rather than let "0 entries" read as
    "never happened" (it still runs: a trail may hold ids of an older version)."""
    from policy import RULES

    known = [known.id for known in RULES]
    if rule is None or rule in known:
        return
    close = difflib.get_close_matches(rule, known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else ""
    print(f"jitwatch: no rule of this version has the id {rule!r}{hint}", file=sys.stderr)


def _query(settings: Settings, args: argparse.Namespace) -> int:
    from streams.audit.keys import redis_for
    from streams.audit.query import TABLE_HEADER, format_row, query

    _warn_unknown_rule(args.rule)

    async def run() -> int:
        client = redis_for(settings.audit, "verifier")
        try:
            found = await query(client, settings.audit_key_prefix, settings.topic_partitions,
                                _filters(args))
        finally:
            await client.aclose()
        if found and args.format == "table":
            print(TABLE_HEADER)
        for item in found:
            if args.format == "jsonl":
                sys.stdout.buffer.write(orjson.dumps(item.as_json()) + b"\n")
            else:
                print(format_row(item))
        sys.stdout.flush()
        print(f"{len(found)} {'entry' if len(found) == 1 else 'entries'}", file=sys.stderr)
        return 0

    return _redis_run(settings, run)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from streams.audit.keys import redis_for
    from streams.audit.query import export

    partitions = args.partition or list(range(settings.topic_partitions))
    unknown = sorted(set(partitions) - set(range(settings.topic_partitions)))
    if unknown:
        raise JitwatchError(f"--partition {unknown[0]}: the decisions topic has partitions 0 "
                            f"to {settings.topic_partitions - 1} (JITWATCH_TOPIC_PARTITIONS)")
    # Written next to the target and renamed once complete: a failed export leaves no file
    # that could pass for one.
    partial = None if args.out is None else args.out.with_name(f".{args.out.name}.partial")

    async def run() -> int:
        client = redis_for(settings.audit, "verifier")
        try:
            if partial is None:
                return await export(client, settings.audit_key_prefix, partitions,
                                    sys.stdout.buffer)
            with partial.open("wb") as handle:
                return await export(client, settings.audit_key_prefix, partitions, handle)
        finally:
            await client.aclose()

    try:
        lines = _redis_run(settings, run)
        if partial is not None:
            partial.replace(args.out)
    except OSError as exc:
        if partial is None:  # stdout: a reader that stopped early (`| head`) is no error
            raise
        raise JitwatchError(f"cannot write the export {args.out}: {exc.strerror}") from exc
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    print(f"exported {lines} lines; verify offline with `jitwatch audit verify --export "
          f"{args.out or 'FILE'} --public-key notary.pub`", file=sys.stderr)
    return 0


def register(commands: Commands) -> None:
    """Add ``audit-sink`` and ``audit`` with its subcommands to the ``jitwatch`` parser."""
    audit_sink = commands.add_parser("audit-sink", help="append every decision to the Redis "
                                     "audit trail (also `jitwatch audit sink`)")
    audit_sink.set_defaults(run=_sink)
    audit = commands.add_parser("audit", help="the tamper-evident audit trail: sink, "
                                "notary, verify, query, export, keygen")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    sink = sub.add_parser("sink", help="append every decision to the Redis audit trail "
                          "(the same as `jitwatch audit-sink`)")
    sink.set_defaults(run=_sink)

    keygen = sub.add_parser("keygen", help="create the notary's Ed25519 key pair (review "
                            "and policy keys: `jitwatch keygen`)", epilog=KEY_ROTATION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    keygen.add_argument("--out", type=Path, required=True,
                        help="directory for notary.key (0600) and notary.pub")
    keygen.add_argument("--if-missing", action="store_true",
                        help="keep a key pair already there (exit 0) instead of refusing: "
                        "for a container that makes its keys on first start")
    keygen.set_defaults(run=_keygen)

    notary = sub.add_parser("notary", help="sign chain heads every N entries or T seconds")
    notary.set_defaults(run=_notary)

    verify = sub.add_parser("verify", help="check signatures, hashes, links and gaps; exit 0 "
                            "intact, 1 tampered, 2 incomplete")
    verify.add_argument("--public-key", type=Path, action="append",
                        help="a public key of the notary, repeatable: every key it signed "
                        "with, old ones after a rotation (default "
                        "JITWATCH_AUDIT_VERIFY_KEY_FILE)")
    verify.add_argument("--keys", type=Path, metavar="FILE",
                        help="a keys file: the notary's public keys with the period each "
                        "was in use (see `jitwatch audit keygen --help`)")
    verify.add_argument("--max-unsigned-age", type=float, metavar="SECONDS",
                        help="the newest checkpoint may be at most this old while entries "
                        "are unsigned (default: twice JITWATCH_AUDIT_CHECKPOINT_INTERVAL_S)")
    verify.add_argument("--max-unsigned", type=int, metavar="N",
                        help="at most N entries after the newest checkpoint (default: twice "
                        "JITWATCH_AUDIT_CHECKPOINT_EVERY)")
    verify.add_argument("--allow-unsigned", action="store_true",
                        help="report a chain without a (recent) checkpoint, but exit 0 for it")
    verify.add_argument("--against-kafka", action="store_true",
                        help="also check each chain equals its decisions partition 1:1 and "
                        "its checkpoints are the ones anchored in the checkpoints topic "
                        "(reads both with the JITWATCH_KAFKA_* SASL/TLS settings)")
    verify.add_argument("--export", type=Path, metavar="FILE",
                        help="verify an export file offline instead of Redis")
    verify.set_defaults(run=_verify)

    query = sub.add_parser("query", help="find decisions by subject, request, action, rule "
                           "and time range")
    query.add_argument("--subject", help="exact subject id")
    query.add_argument("--request", help="exact request id")
    # Actions are the contract's lower-case words; `tail` shows them in capitals.
    query.add_argument("--action", type=str.lower, choices=get_args(Action),
                       help="one of " + ", ".join(get_args(Action)) + " (any case)")
    query.add_argument("--rule", help="exact rule id, e.g. max-active-resources (the ids are "
                       "in README, Policy and rules)")
    query.add_argument("--since", type=utc_time, metavar="TIME", help="decision at >= TIME")
    query.add_argument("--until", type=utc_time, metavar="TIME", help="decision at <= TIME")
    query.add_argument("--limit", type=int, help="at most this many (oldest first)")
    query.add_argument("--format", choices=["table", "jsonl"], default="table")
    query.set_defaults(run=_query)

    export = sub.add_parser("export", help="write the chains and checkpoints as JSONL, with "
                            "everything needed to verify them offline")
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    export.add_argument("--partition", type=int, action="append",
                        help="only this partition (repeatable)")
    export.set_defaults(run=_export)
