"""Write ``tests/golden/_mixed/events.jsonl``: a seeded mix of every input type.

The hand-written golden cases pin one rule each; this corpus pins the bytes of many rules
meeting at once (issue G: moving code must leave every decision byte-identical). It is
generated once and committed; ``test_golden.py`` replays it and compares the decisions with
``_mixed/decisions.jsonl`` byte for byte. Regenerate only on purpose:

    .venv/bin/python -m tests.golden.make_mixed
    .venv/bin/jitwatch simulate --events tests/golden/_mixed/events.jsonl \
        --policy tests/golden/_mixed/policy.toml --format jsonl \
        > tests/golden/_mixed/decisions.jsonl
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.keys import signed, signed_release

HERE = Path(__file__).parent / "_mixed"
EVENTS = 2000
T0 = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # a Monday, before the prod window opens
SUBJECTS = [
    ("dev@example.com", "human", "https://login.example.com", False),
    ("ops@example.com", "human", "https://login.example.com", False),
    ("eve@example.com", "human", "https://evil.example.com", False),
    ("alice@example.com", "human", "https://login.example.com", False),
    ("spiffe://example.com/ns/ci/sa/deployer", "workload", "spiffe://example.com", True),
    ("spiffe://example.com/ns/ci/sa/loose", "workload", "spiffe://example.com", False),
    ("agent-7", "agent", "https://agents.example.com", True),
]
RESOURCES = [
    ("db/orders", "prod", "high", ["db-admin"]),
    ("db/logs", "prod", "low", []),
    ("db/payments", "prod", "critical", []),
    ("nb/model", "research", "medium", []),
    ("nb/data", "research", "low", ["auditor"]),
    ("ci/deploy", "staging", "medium", []),
    ("ci/cache", "staging", "low", []),
]


def _resource(rng: random.Random) -> dict[str, Any]:
    rid, env, sensitivity, roles = rng.choice(RESOURCES)
    found: dict[str, Any] = {"id": rid, "env": env}
    if rng.random() < 0.95:  # a missing sensitivity counts as high
        found["sensitivity"] = sensitivity
    if roles:
        found["roles"] = roles
    return found


def generate(seed: int = 20261206) -> list[dict[str, Any]]:
    """The corpus: requests, reviews of every kind, withdrawals, sessions and releases."""
    rng = random.Random(seed)
    at = T0
    events: list[dict[str, Any]] = []
    requests: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # (id, subject, event)
    # Who signs each release is drawn apart, so the rest of the corpus stays as it was
    # before releases were signed (issue H).
    signer = random.Random(seed + 1)
    sessions: list[tuple[str, dict[str, Any]]] = []
    for number in range(EVENTS):
        at += timedelta(seconds=rng.choice((1, 2, 5, 10, 30, 60, 300, 900, 3600)))
        sid, kind, issuer, attested = rng.choices(SUBJECTS, (6, 6, 1, 3, 4, 1, 2))[0]
        subject = {"id": sid, "kind": kind, "issuer": issuer, "attested": attested}
        tenant = rng.choices(("acme", "beta", "zeta"), (14, 5, 1))[0]
        base = {"event_id": f"e-{number}", "at": at.isoformat().replace("+00:00", "Z"),
                "tenant": tenant, "subject": subject}
        roll = rng.random()
        if roll < 0.4 or not requests:
            request_id = f"r-{number}"
            if requests and rng.random() < 0.05:  # reuses a recent id
                request_id = rng.choice(requests[-5:])[0]
            raw: dict[str, Any] = {**base, "type": "request.created", "request_id": request_id,
                                   "resources": [_resource(rng)
                                                 for _ in range(rng.choice((1, 1, 2, 3)))]}
            if rng.random() < 0.8:
                raw["reason"] = "routine work"
            if rng.random() < 0.7:
                raw["ticket"] = rng.choice(("OPS-7", "ops-7", "CHG-1234"))
            if rng.random() < 0.5:
                raw["ttl_s"] = rng.choice((60, 600, 3600, 10_000))
            if rng.random() < 0.12:
                raw["break_glass"] = True
            requests.append((request_id, {"id": sid}, raw))
            events.append(raw)
            continue
        request_id, owner, asked = rng.choice(requests[-4:])
        base["subject"] = owner
        if roll < 0.6:
            reviewer = rng.choice(("alice@example.com", "alice@example.com", "bob@example.com",
                                   owner["id"]))
            review = {**base, "type": "request.reviewed", "request_id": request_id,
                      "reviewer": {"id": reviewer},
                      "outcome": rng.choice(("approved", "approved", "approved", "denied"))}
            style = rng.random()
            if reviewer == "alice@example.com" and style < 0.75:
                # Signed over the request it picked; when the id was used again since
                # (a reuse), that is another request and the signature does not verify.
                review = signed(review, request=asked)
            elif style < 0.85:
                review = {**review, "key_id": "alice-test-1", "signature": "AAAA"}
            events.append(review)
        elif roll < 0.68:
            events.append({**base, "type": "request.withdrawn", "request_id": request_id})
        elif roll < 0.76:
            events.append({**base, "type": "task.completed", "request_id": request_id})
        elif roll < 0.86:
            session_id = f"s-{number}"
            sessions.append((session_id, owner))
            resource = (rng.choice(RESOURCES)[0] if rng.random() < 0.3 else
                        f"{rng.choice(('db', 'nb', 'ci'))}/"
                        f"{rng.choice(('orders', 'logs', 'model', 'deploy'))}")
            events.append({**base, "type": "session.started", "session_id": session_id,
                           "request_id": request_id, "resource": resource})
        elif roll < 0.93 and sessions:
            session_id, owner = rng.choice(sessions[-10:])
            base["subject"] = owner
            if rng.random() < 0.7:
                events.append({**base, "type": "session.activity", "session_id": session_id,
                               "resource": rng.choice(RESOURCES)[0], "action": "SELECT"})
            else:
                events.append({**base, "type": "session.ended", "session_id": session_id})
        else:
            target: dict[str, Any] = ({"subject": owner["id"]} if rng.random() < 0.6
                                      else {"request_id": request_id})
            release = {**base, "type": "lock.released", "target": target,
                       "by": "secops@example.com"}
            how = signer.random()
            if how < 0.6:  # the listed operator
                release = signed_release(release)
            elif how < 0.75:  # the subject, with its own listed operator key
                release = signed_release({**release, "by": owner["id"]})
            elif how < 0.85:  # secops' key id, a signature that is not secops'
                release = {**release, "key_id": "secops-op-1", "signature": "AAAA"}
            events.append(release)  # else unsigned
        if rng.random() < 0.01:  # a burst of requests from one subject
            for extra in range(14):
                at += timedelta(seconds=1)
                events.append({**base, "event_id": f"e-{number}-burst-{extra}",
                               "at": at.isoformat().replace("+00:00", "Z"),
                               "request_id": f"r-{number}-burst-{extra}",
                               "type": "request.created",
                               "resources": [{"id": "ci/cache", "env": "staging",
                                              "sensitivity": "low"}]})
        if rng.random() < 0.03:  # a redelivery of an earlier event
            events.append(rng.choice(events[-30:]))
    return events


def main() -> None:
    lines = b"".join(orjson.dumps(event) + b"\n" for event in generate())
    (HERE / "events.jsonl").write_bytes(lines)
    print(f"wrote {lines.count(chr(10).encode())} events to {HERE / 'events.jsonl'}")


if __name__ == "__main__":
    main()
