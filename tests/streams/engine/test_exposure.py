"""The exposure report's figures checked against ``simulate`` on the same input: the golden
events are replayed with simulate's code, the report is built from the decisions it wrote,
and each figure is worked out again another way (from the raw JSON, from simulate's own
counters, from the events)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.decisions import Decision
from schemas.events import RequestCreated
from streams.control.policy import load_policy
from streams.engine.codec import encode_decision, parse_line
from streams.engine.decision_lines import read_records
from streams.engine.exposure import Exposure, ExposureBuilder, facts_of
from streams.engine.replay import Replay, replay_lines
from tests.paths import REPO

GOLDEN = REPO / "tests" / "golden"


def simulated(case: str) -> tuple[Replay, list[bytes]]:
    """What ``jitwatch simulate --format jsonl`` writes for the case, and its counters."""
    folder = GOLDEN / case
    policy_file = folder / "policy.toml"
    policy = load_policy(policy_file if policy_file.exists() else None)
    replay = Replay()
    lines = (folder / "events.jsonl").read_bytes().splitlines()
    out = [encode_decision(item) for item in replay_lines(lines, policy, replay, 65536)
           if isinstance(item, Decision)]
    return replay, out


def requests_of(case: str) -> list[RequestCreated]:
    found = []
    for line in (GOLDEN / case / "events.jsonl").read_bytes().splitlines():
        try:
            event, _ = parse_line(line, 65536)
        except ValueError:
            continue
        if isinstance(event, RequestCreated):
            found.append(event)
    return found


def report(case: str, since: datetime | None = None,
           until: datetime | None = None) -> tuple[Exposure, list[dict[str, Any]], Replay]:
    replay, lines = simulated(case)
    builder = ExposureBuilder()
    for event in requests_of(case):
        key, facts = facts_of(event)
        builder.facts[key] = facts
    for record in read_records(lines):
        assert not isinstance(record, ValueError), record
        builder.add(record)
    return builder.finish(since, until), [orjson.loads(line) for line in lines], replay


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def held_hours(raw: list[dict[str, Any]], until: datetime) -> dict[str, float]:
    """Grant-hours per subject integrated from each decision's ``state.after.active_grants``
    (the subject's live grants after it), a number the report never reads."""
    hours: dict[str, float] = defaultdict(float)
    live: dict[str, tuple[datetime, int]] = {}
    for decision in raw:
        who = f"{decision['tenant']}/{decision['subject']['id']}"
        at = _time(decision["at"])
        if at > until:
            break
        if who in live:
            since, count = live[who]
            hours[who] += count * (at - since).total_seconds() / 3600
        live[who] = (at, decision["state"]["after"]["active_grants"])
    for who, (since, count) in live.items():
        hours[who] += count * max((until - since).total_seconds(), 0) / 3600
    return {who: value for who, value in hours.items() if value}


@pytest.mark.parametrize("case", ["_mixed", "extension-approved", "break-glass",
                                  "task-completed", "post-review-done", "review-threshold"])
def test_counts_match_simulate(case: str) -> None:
    exposure, raw, replay = report(case)
    assert exposure.decisions == sum(replay.actions.values()) == len(raw)
    assert dict(exposure.actions) == dict(replay.actions)
    by_rule: Counter[str] = Counter()
    for (_, rule), count in exposure.rules.items():
        by_rule[rule] += count
    assert dict(by_rule) == dict(replay.rules)
    assert dict(exposure.locks) == dict(Counter(d["rule"]["id"] for d in raw
                                                if d["action"] == "lock"))
    assert sum(g.break_glass for g in exposure.grants) == sum(
        d["action"] == "approve" and d["rule"]["id"] == "break-glass" for d in raw)
    assert exposure.extensions == sum(d["rule"]["id"] == "extension-approved" for d in raw)


@pytest.mark.parametrize("case", ["_mixed", "extension-approved", "cap-revoke-oldest",
                                  "ttl-default-and-clamp", "task-completed"])
def test_grant_hours_match_the_states(case: str) -> None:
    exposure, raw, _ = report(case)
    assert raw
    expected = held_hours(raw, exposure.until)
    assert exposure.hours_by_subject.keys() >= expected.keys()
    for who, hours in exposure.hours_by_subject.items():
        assert hours == pytest.approx(expected.get(who, 0.0), abs=1e-6), who
    total = sum(expected.values())
    assert sum(exposure.hours_by_day.values()) == pytest.approx(total, abs=1e-6)
    assert sum(exposure.hours_by_sensitivity.values()) == pytest.approx(total, abs=1e-6)


def test_requested_ttl_and_clamps_come_from_the_events() -> None:
    exposure, raw, _ = report("_mixed")
    asked = {(e.tenant, e.subject.id, e.request_id): e.ttl_s for e in requests_of("_mixed")}
    clamped = 0
    for grant in exposure.grants:
        ttl = asked[(grant.tenant, grant.subject, grant.request_id)]
        assert grant.requested_ttl_s == (None if ttl is None else float(ttl))
        clamped += ttl is not None and ttl > grant.granted_ttl_s
    approvals = [d for d in raw if d["action"] == "approve" and d["expires_at"]]
    assert len(exposure.grants) == len(approvals)
    assert exposure.clamps == clamped > 0
    assert exposure.ended_by["ttl-expired"] == sum(d["rule"]["id"] == "ttl-expired"
                                                   for d in raw)


def test_review_queue_outcomes() -> None:
    exposure, raw, _ = report("_mixed")
    outcomes = Counter(outcome for _, _, outcome in exposure.queue)
    assert outcomes["expired"] == sum(d["rule"]["id"] == "pending-expired" for d in raw)
    assert outcomes["approved"] == sum(d["rule"]["id"] == "review-approved" for d in raw)
    assert all(age >= 0 for _, age, _ in exposure.queue)


def test_period_and_tenant() -> None:
    since, until = datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    exposure, raw, _ = report("_mixed", since, until)
    inside = [d for d in raw if since <= _time(d["at"]) < until]
    assert exposure.decisions == len(inside)
    assert dict(exposure.actions) == dict(Counter(d["action"] for d in inside))
    whole = held_hours(raw, until)
    before = held_hours(raw, since)
    for who, hours in exposure.hours_by_subject.items():
        assert hours == pytest.approx(whole.get(who, 0) - before.get(who, 0), abs=1e-6)
    builder = ExposureBuilder(tenant="beta")
    for record in read_records(orjson.dumps(d) for d in raw):
        assert not isinstance(record, ValueError)
        builder.add(record)
    beta = builder.finish()
    assert beta.decisions == sum(d["tenant"] == "beta" for d in raw)
    assert all(who.startswith("beta/") for who in beta.hours_by_subject)


def test_audit_export_entries_and_policy_loads_are_read(tmp_path: Path) -> None:
    _, lines = simulated("task-completed")
    load = {"schema": "jit.policy-load/v1", "decision_id": "p-1", "outcome": "loaded",
            "at": "2026-11-23T09:00:00Z", "emitted_at": "2026-11-23T09:00:00Z",
            "subject": {"id": "jitwatch", "kind": "workload"}, "worker": "h:1",
            "old": None, "new": {"version": "v1", "sha256": "ab", "signer": None,
                                 "key_id": None, "source": "p.toml"},
            "reason": "policy v1 in force",
            "cause": {"event_id": "p-1", "type": "policy.load", "topic": None,
                      "partition": None, "offset": None}}
    export = [orjson.dumps({"kind": "export", "format": 1, "partitions": [0]}),
              orjson.dumps(load)]
    export += [orjson.dumps({"kind": "entry", "partition": 0, "decision": line.decode()})
               for line in lines]
    export.append(orjson.dumps({"kind": "end", "partitions": {}}))
    records = list(read_records(export))
    assert len(records) == len(lines) + 1
    builder = ExposureBuilder()
    for record in records:
        assert not isinstance(record, ValueError)
        builder.add(record)
    exposure = builder.finish()
    assert exposure.decisions == len(lines)
    assert [load.outcome for load in exposure.policy_loads] == ["loaded"]


@pytest.mark.parametrize(("case", "status"), [("post-review-done", "approved"),
                                              ("post-review-overdue", "approved late")])
def test_break_glass_post_review_status(case: str, status: str) -> None:
    exposure, raw, _ = report(case)
    glass = sum(d["rule"]["id"] == "break-glass" and d["action"] == "approve" for d in raw)
    assert glass
    assert sum(exposure.break_glass.values()) == glass
    assert exposure.break_glass[status] >= 1
    since = max(_time(d["at"]) for d in raw if d["rule"]["id"] == "post-review-done")
    later, _, _ = report(case, since=since)
    assert sum(later.break_glass.values()) == sum(  # only those granted in the period
        d["rule"]["id"] == "break-glass" and d["action"] == "approve"
        and _time(d["at"]) >= since for d in raw)
