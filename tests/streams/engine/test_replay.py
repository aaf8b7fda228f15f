"""File replay: event time drives expiry across subjects; ids match inline expiry."""

from __future__ import annotations

from importlib import resources

import orjson

from policy import step
from schemas.decisions import Cause, Decision
from schemas.policy import parse_policy
from streams.engine.replay import BadLine, Replay, replay_lines
from tests.factories import at, raw_request, request

POLICY = parse_policy(resources.files("policy").joinpath("default.toml").read_text())


def run(raws: list[dict[str, object]], until: int | None = None) -> list[Decision]:
    lines = [orjson.dumps(raw) for raw in raws]
    items = list(replay_lines(lines, POLICY, Replay(), 65536,
                              until=None if until is None else at(until)))
    assert not [item for item in items if isinstance(item, BadLine)]
    return [item for item in items if isinstance(item, Decision)]


def test_expiries_fire_in_event_time_across_subjects() -> None:
    decisions = run([
        raw_request("r-1", [("a", "prod")], subject="alice", ttl_s=60),
        raw_request("r-2", [("a", "prod")], subject="bob", t=10, ttl_s=600),
        raw_request("r-3", [("a", "prod")], subject="carol", t=300),
    ])
    assert [(d.action, d.request_id, d.at) for d in decisions] == [
        ("approve", "r-1", at(0)),
        ("approve", "r-2", at(10)),
        ("revoke", "r-1", at(60)),
        ("approve", "r-3", at(300)),
    ]
    expiry = decisions[2]
    assert expiry.rule.id == "ttl-expired"
    assert expiry.cause.type == "clock.tick"
    assert expiry.subject.id == "alice"


def test_until_lets_time_run_on() -> None:
    decisions = run([raw_request("r-1", [("a", "prod")], ttl_s=60),
                     raw_request("r-2", [("b", "prod")], t=1, ttl_s=120)], until=100)
    assert [(d.action, d.request_id) for d in decisions] == [
        ("approve", "r-1"), ("approve", "r-2"), ("revoke", "r-1")]


def test_tick_and_inline_expiry_share_the_decision_id() -> None:
    replayed = run([raw_request("r-1", [("a", "prod")], ttl_s=60),
                    raw_request("r-2", [("b", "prod")], t=100)])
    first = step(None, request("r-1", [("a", "prod")], ttl_s=60), POLICY,
                 Cause(event_id="e-r-1", type="request.created"))
    inline = step(first.stored, request("r-2", [("b", "prod")], t=100), POLICY,
                  Cause(event_id="e-r-2", type="request.created"))
    by_tick = next(d for d in replayed if d.rule.id == "ttl-expired")
    by_event = next(d for d in inline.decisions if d.rule.id == "ttl-expired")
    assert by_tick.decision_id == by_event.decision_id
    assert by_tick.cause.type == "clock.tick"
    assert by_event.cause.type == "request.created"


def test_subjects_minted_by_a_producer_are_deleted_once_quiet() -> None:
    """Issue H, bounds (the adversarial review): fresh subject ids, each with a request and a
    refused event, do not stay stored for ever; 30 days after the last event (the packaged
    request-id retention) with nothing live, each is deleted."""
    lines = []
    for number in range(50):
        raw = raw_request(f"r-{number}", [("db", "prod")], subject=f"minted-{number}",
                          event_id=f"e-{number}", t=number, ttl_s=60)
        lines.append(orjson.dumps(raw))
        lines.append(orjson.dumps({**raw, "event_id": f"x-{number}", "request_id": "",
                                   "resources": []}))  # refused: schema
    kept, forgotten = Replay(), Replay()
    decided = list(replay_lines(lines, POLICY, kept, 65536, until=at(29 * 86400)))
    assert len(kept.states) == 50  # their request ids are still remembered
    assert sum(isinstance(item, BadLine) for item in decided) == 50
    list(replay_lines(lines, POLICY, forgotten, 65536, until=at(31 * 86400)))
    assert forgotten.states == {}


def test_a_session_never_ended_does_not_keep_its_subject_for_ever() -> None:
    """The second adversarial review: a session.started without its session.ended kept
    the subject stored after its grant ended and its retention passed."""
    lines = []
    for number in range(20):
        subject = f"minted-{number}"
        lines.append(orjson.dumps(raw_request(f"r-{number}", [("db", "dev")], subject=subject,
                                              event_id=f"e-{number}", t=number, ttl_s=60)))
        lines.append(orjson.dumps({
            "type": "session.started", "event_id": f"s-{number}", "at": at(number + 1),
            "tenant": "default", "subject": {"id": subject}, "session_id": f"s-{number}",
            "request_id": f"r-{number}", "resource": "db"}))
    replay = Replay()
    list(replay_lines(lines, POLICY, replay, 65536, until=at(31 * 86400)))
    assert replay.states == {}
