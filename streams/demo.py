"""A short scripted scenario that shows each rule fire, and a readable decision printer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["DemoPhase", "demo_phases", "format_decision"]


@dataclass(frozen=True)
class DemoPhase:
    """Events to publish together, and how many decisions they yield."""

    events: list[dict[str, Any]]
    decisions: int


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
    review = _demo_signed({"type": "request.reviewed", "event_id": f"e-{run}-9",
                           "at": next(clock), "tenant": "acme", "subject": deployer,
                           "request_id": f"r-{run}-7", "reviewer": {"id": "carol@acme.example"},
                           "outcome": "approved"})
    done = {"type": "task.completed", "event_id": f"e-{run}-10", "at": next(clock),
            "tenant": "acme", "subject": deployer, "request_id": f"r-{run}-7"}
    return [DemoPhase(requests, decisions=11), DemoPhase([review], decisions=1),
            DemoPhase([done], decisions=1)]


DEMO_REVIEWER_KEY_ID = "carol-demo"
"""The demo reviewer's key id; its public key is in ops/demo-policy.toml. DEMO ONLY: the
private key is derived from a public seed, so anyone can sign with it."""


def _demo_signed(raw: dict[str, Any]) -> dict[str, Any]:
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from policy import sign_review
    from schemas.events import INPUT_EVENT

    seed = hashlib.sha256(b"jitwatch demo reviewer carol (demo only)").digest()
    raw = {**raw, "key_id": DEMO_REVIEWER_KEY_ID}
    review = INPUT_EVENT.validate_python(raw)
    signature = sign_review(review, DEMO_REVIEWER_KEY_ID,  # type: ignore[arg-type]
                            Ed25519PrivateKey.from_private_bytes(seed))
    return {**raw, "signature": signature}


_COLOURS = {"approve": "32", "deny": "31", "revoke": "33", "escalate": "35", "lock": "31;1",
            "unlock": "36"}


def format_decision(decision: dict[str, Any], colour: bool = False) -> str:
    """One line an operator can read: time, action, subject, request, rule and reason."""
    action = str(decision["action"]).upper()
    if colour:
        action = f"\x1b[{_COLOURS.get(decision['action'], '0')}m{action:<8}\x1b[0m"
    else:
        action = f"{action:<8}"
    at = str(decision["at"])[11:19]
    targets = ",".join(decision.get("targets") or []) or decision.get("request_id") or "-"
    subject = decision["subject"]["id"]
    if len(subject) > 40:
        subject = "…" + subject[-39:]
    return (f"{at}  {action} {subject:<40} {targets:<14} [{decision['rule']['id']}] "
            f"{decision['reason']}")
