"""``jitwatch demo``: publish a short scripted scenario that shows each rule fire, and print
its decisions as they arrive."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from streams.cli.support import Commands
from streams.settings import Settings

__all__ = ["DEMO_REVIEWER_KEY_ID", "DemoPhase", "demo_phases", "register"]


def register(commands: Commands) -> None:
    """Add ``demo`` to the ``jitwatch`` parser."""
    demo = commands.add_parser("demo", help="publish a demo scenario and print its decisions")
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    demo.set_defaults(run=_cmd_demo)


@dataclass(frozen=True)
class DemoPhase:
    """Events to publish together, and how many decisions (and notices) they yield."""

    events: list[dict[str, Any]]
    decisions: int
    notices: int = 0


def demo_phases(now: datetime | None = None, run: str | None = None) -> list[DemoPhase]:
    """Events for two subjects; ids carry a run tag so every demo run is decided afresh.

    Phases follow each other once the previous one is decided: a review only makes sense
    once its request is pending, and requests and sessions are separate topics that Kafka
    does not order against each other. Meant for ops/demo-policy.toml.
    """
    now = now or datetime.now(UTC)
    run = run or uuid.uuid4().hex[:6]
    alice = {"id": f"alice@{run}", "kind": "human", "issuer": "https://login.acme.example",
             "owner": "team-payments"}
    oncall = {"id": f"bob@{run}", "kind": "human", "issuer": "https://login.acme.example",
              "owner": "team-sre"}
    deployer = {"id": f"spiffe://acme.example/ns/ci/sa/deployer-{run}", "kind": "workload",
                "issuer": "spiffe://acme.example", "attested": True, "owner": "team-platform"}

    def times() -> Iterator[str]:
        # 10 ms apart: in event order (a batch is decided in event-time order), and never
        # ahead of the clock by more than the scenario's length (it was 1 s apart, so the
        # last phase's event was stamped 9 s after it was sent).
        step = 0
        while True:
            yield (now + timedelta(milliseconds=10 * step)).isoformat().replace("+00:00", "Z")
            step += 1

    clock = times()

    def request(subject: dict[str, Any], number: int, resources: list[tuple[str, ...]],
                **extra: Any) -> dict[str, Any]:
        return {
            "type": "request.created", "event_id": f"e-{run}-{number}", "at": next(clock),
            "tenant": "acme", "subject": subject, "request_id": f"r-{run}-{number}",
            "resources": [{"id": rid, "env": env, "sensitivity": level[0] if level else "medium",
                           "roles": ["reader"]} for rid, env, *level in resources],
            "ttl_s": 900, "reason": "demo", **extra,
        }

    requests = [
        request(alice, 1, [("db/orders", "prod")]),
        request(alice, 2, [("db/users", "prod"), ("s3/reports", "prod")]),
        # A fourth resource: the oldest grant (r-1) is revoked to stay within 3.
        request(alice, 3, [("k8s/payments", "prod")]),
        # Research while holding prod: the older prod grants are revoked.
        request(alice, 4, [("notebook/ml", "research")]),
        # One request spanning prod and research is denied outright.
        request(deployer, 5, [("k8s/deploy", "prod"), ("notebook/ml", "research")]),
        # Too many resources in one request: denied.
        request(deployer, 6, [("a", "prod"), ("b", "prod"), ("c", "prod"), ("d", "prod")]),
        # The workload's first prod request: a human must look (baseline-novel).
        request(deployer, 7, [("k8s/deploy", "prod")], ttl_s=10 * 3600),
        # Break-glass: granted at once for 15 minutes, marked for post-review.
        request(oncall, 8, [("db/orders", "prod", "critical")], break_glass=True,
                ticket="INC-4711", reason="orders database down"),
    ]
    review = _demo_signed(requests[6], {"type": "request.reviewed", "event_id": f"e-{run}-9",
                           "at": next(clock), "tenant": "acme", "subject": deployer,
                           "request_id": f"r-{run}-7", "reviewer": {"id": "carol@acme.example"},
                           "outcome": "approved"})
    # Issue J: more time on alice's live research grant, decided like a request for it.
    extension = {"type": "request.extension_requested", "event_id": f"e-{run}-11",
                 "at": next(clock), "tenant": "acme", "subject": alice,
                 "request_id": f"r-{run}-4", "ttl_s": 900, "reason": "model still training",
                 "ticket": "ML-42"}
    done = {"type": "task.completed", "event_id": f"e-{run}-10", "at": next(clock),
            "tenant": "acme", "subject": deployer, "request_id": f"r-{run}-7"}
    # Issue J: the break-glass is reviewed after the fact, closing its obligation.
    post_review = _demo_signed(requests[7], {
        "type": "request.reviewed", "event_id": f"e-{run}-12", "at": next(clock),
        "tenant": "acme", "subject": oncall, "request_id": f"r-{run}-8",
        "reviewer": {"id": "carol@acme.example"}, "outcome": "approved"})
    # The break-glass's post-review-due notice goes to jit.notices, not the decisions.
    return [DemoPhase(requests, decisions=11, notices=1),
            DemoPhase([review, extension], decisions=2),
            DemoPhase([done, post_review], decisions=2)]


DEMO_REVIEWER_KEY_ID = "carol-demo"
"""The demo reviewer's key id; its public key is in ops/demo-policy.toml. DEMO ONLY: the
private key is derived from a public seed, so anyone can sign with it."""


def _demo_signed(asked: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` signed by the demo reviewer over ``asked``, the request.created it approves
    (a review's signature covers the request's digest: jit.review-signature/v2)."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from policy import request_digest, sign_review
    from schemas.events import INPUT_EVENT, RequestCreated, RequestReviewed

    seed = hashlib.sha256(b"jitwatch demo reviewer carol (demo only)").digest()
    raw = {**raw, "key_id": DEMO_REVIEWER_KEY_ID}
    review = INPUT_EVENT.validate_python(raw)
    request = INPUT_EVENT.validate_python(asked)
    assert isinstance(review, RequestReviewed)
    assert isinstance(request, RequestCreated)
    signature = sign_review(review, DEMO_REVIEWER_KEY_ID,
                            Ed25519PrivateKey.from_private_bytes(seed), request_digest(request))
    return {**raw, "signature": signature}


def _caused_by(event_ids: set[str], decision: dict[str, Any]) -> bool:
    return decision["cause"]["event_id"] in event_ids


def _cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from streams.cli.printer import format_decision, format_notice
    from streams.kafka.decisions import collect_decisions, collect_notices
    from streams.kafka.inputs import publish_events

    colour = sys.stdout.isatty()
    expected = 0
    for phase in demo_phases():
        tagged = {event["event_id"] for event in phase.events}
        expected += phase.decisions
        print(f"publishing {len(phase.events)} demo events …")
        asyncio.run(publish_events(settings.kafka, settings.topics, phase.events))
        decisions = asyncio.run(
            collect_decisions(settings.kafka, settings.topics, partial(_caused_by, tagged),
                              expect=phase.decisions, timeout_s=args.timeout)
        )
        for decision in decisions:
            print(format_decision(decision, colour=colour))
        notices = asyncio.run(
            collect_notices(settings.kafka, settings.topics, partial(_caused_by, tagged),
                            expect=phase.notices, timeout_s=args.timeout)
        ) if phase.notices else []
        for notice in notices:
            print(format_notice(notice))
        if len(decisions) < phase.decisions or len(notices) < phase.notices:
            print(f"only {len(decisions)} of {phase.decisions} decisions and {len(notices)} of "
                  f"{phase.notices} notices arrived within "
                  f"{args.timeout:.0f} s; is the worker running (see its log)?", file=sys.stderr)
            return 1
    print(f"{expected} decisions")
    return 0
