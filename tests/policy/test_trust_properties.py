"""Issue H's trust-boundary properties, over arbitrary claimed ``at`` stamps, broker times
and orders (hypothesis).

Lines are replayed as ``jitwatch simulate`` replays them (streams.engine.replay: broker
time per line, expiry ticks, the stored-value bound), the oracle the stream is held to.
Producers here lie about ``at`` (up to twice ``time.max_skew_s`` either way), broker times
may step back (two input topics), ids are reused, signed reviews and releases are replayed
byte for byte much later, and a mallory signs with a key listed for someone else:

(a) no grant is live past the broker time + the longest lifetime;
(b) no lock ends but by its expiry or one release signed by a listed operator not locked;
(c) an approve that comes from a review covers exactly the resources the review signed;
(d) no stored value exceeds the limit (a small one, so it bites);
(e) no ``decision_id`` is emitted twice with different contents.

Each property runs few examples (the file stays under half a minute on two cores) and
derandomized, so CI sees the same cases every run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.decisions import Decision
from schemas.policy import parse_policy
from streams.engine.codec import encode_decision, encode_stored
from streams.engine.replay import BadLine, Replay, replay_lines
from tests.factories import at, raw_event, raw_request
from tests.keys import operator_keys_toml, policy_keys_toml, signed, signed_release

SKEW_S = 300
MAX_TTL_S = 8 * 3600
LIMIT = 2500
"""The stored-value limit here: a few grants and marks fill it."""

LOADED = parse_policy(
    'version = "trust-properties"\n'
    '[defaults.step_up]\nfrom_sensitivity = "high"\npending_ttl_s = 900\n'
    '[[defaults.step_up.reviewers]]\nids = ["carol"]\n'
    + policy_keys_toml("defaults.step_up", ["carol", "alice"])
    + operator_keys_toml("defaults", ["ops", "alice"])
    + f"\n[defaults.time]\nmax_skew_s = {SKEW_S}\n"
    + f"[defaults.ttl]\nmax_s = {MAX_TTL_S}\n"
    + '[defaults.break_glass]\nmax_per_window = 1\nlock_s = 600\n'
    + "[defaults.locks]\ndefault_s = 600\n")
IDS = ("r-0", "r-1", "r-2", "r-3")
RESOURCES = ("a", "b", "c", "d", "e")
LATEST = "latest"
"""A review, withdrawal or session naming the request id asked last."""

step = st.one_of(
    st.tuples(st.just("ask"), st.sampled_from(IDS),
              st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2, unique=True),
              st.sampled_from(["low", "high"]), st.sampled_from([60, 3600, 10**6])),
    st.tuples(st.just("glass"), st.sampled_from(IDS), st.just(["a"]), st.just("high"),
              st.just(600)),
    st.tuples(st.sampled_from(["approve", "approve", "self-approve", "withdraw", "session"]),
              st.sampled_from([*IDS, LATEST, LATEST]), st.just([]), st.just(""), st.just(0)),
    st.tuples(st.just("release"), st.sampled_from(["ops", "ops", "alice", "mallory"]),
              st.just([]), st.just(""), st.just(0)),
    st.tuples(st.just("replay"), st.integers(0, 40), st.just([]), st.just(""), st.just(0)),
    st.tuples(st.just("burst"), st.just(""), st.just([]), st.just(""), st.just(0)),
    # Compound steps, so the rare paths come up often: an escalated request and carol's
    # approval a second later; a second break-glass (a lock) and an operator's release.
    st.tuples(st.just("reviewed"), st.sampled_from(IDS),
              st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2, unique=True),
              st.just("high"), st.sampled_from([60, 3600])),
    st.tuples(st.just("released"), st.sampled_from(IDS), st.just(["a"]), st.just("high"),
              st.just(600)),
)
# Broker-time gaps (seconds; negative: the other input topic's broker time lags) and lies
# about ``at``: mostly small, so events land within the skew and near each other, with
# jumps past lifetimes and past the skew among them.
gap = st.sampled_from([0, 1, 20, 120, 700, 2400, 30_000, -30])
lie = st.sampled_from([0, 0, 3, -3, SKEW_S - 1, 1 - SKEW_S, SKEW_S + 60, -SKEW_S - 60])
lines = st.lists(st.tuples(step, gap, lie), min_size=1, max_size=40)
checked = settings(max_examples=200, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def expand(plan: list[tuple[Any, int, int]]) -> list[tuple[Any, int, int]]:
    """The compound steps as their simple ones."""
    out: list[tuple[Any, int, int]] = []
    for (kind, what, resources, level, ttl), gap, lie in plan:
        if kind == "reviewed":
            out += [(("ask", what, resources, level, ttl), gap, lie),
                    (("approve", LATEST, [], "", 0), 1, 0)]
        elif kind == "released":
            out += [(("glass", what, resources, level, ttl), gap, lie),
                    (("glass", what, resources, level, ttl), 1, 0),
                    (("release", "ops", [], "", 0), 1, 0)]
        else:
            out.append(((kind, what, resources, level, ttl), gap, lie))
    return out


def build(plan: list[tuple[Any, int, int]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The lines to replay (each with ``broker_time``), and per review event id the raw
    request its signature covers."""
    out: list[dict[str, Any]] = []
    asked: dict[str, dict[str, Any]] = {}
    signed_for: dict[str, dict[str, Any]] = {}
    broker, latest = 0, IDS[0]
    for number, ((kind, what, resources, level, ttl), gap, lie) in enumerate(expand(plan)):
        broker = max(0, broker + gap)
        if what == LATEST:
            what = latest
        t, eid = broker + lie, f"e-{number}"
        raw: dict[str, Any]
        if kind in ("ask", "glass"):
            raw = raw_request(what, [{"id": rid, "env": "prod", "sensitivity": level}
                                     for rid in resources], t=t, event_id=eid,
                              ttl_s=ttl, ticket="OPS-1", break_glass=kind == "glass")
            asked[what], latest = raw, what
        elif kind in ("approve", "self-approve"):
            reviewer = "carol" if kind == "approve" else "alice"
            raw = signed(raw_event("request.reviewed", event_id=eid, t=t, request_id=what,
                                   reviewer={"id": reviewer}, outcome="approved"),
                         request=asked.get(what, "0" * 64))
            if what in asked:
                signed_for[eid] = asked[what]
        elif kind == "withdraw":
            raw = raw_event("request.withdrawn", event_id=eid, t=t, request_id=what)
        elif kind == "session":
            raw = raw_event("session.started", event_id=eid, t=t, session_id=f"s-{number}",
                            request_id=what, resource="a")
        elif kind == "release":
            raw = signed_release(raw_event("lock.released", event_id=eid, t=t,
                                           target={"subject": "alice"}, by=what),
                                 "ops" if what == "mallory" else what)
        elif kind == "burst":  # enough events to push every id out of the 64-id memory
            out += [raw_event("session.ended", event_id=f"{eid}-{n}", t=broker,
                              session_id="none") | {"broker_time": at(broker).isoformat()}
                    for n in range(65)]
            continue
        else:  # a byte-for-byte replay of an earlier signed line, at a later broker time
            signed_lines = [line for line in out if "signature" in line]
            if not signed_lines:
                continue
            out.append({key: value for key, value in
                        signed_lines[what % len(signed_lines)].items()
                        if key != "broker_time"} | {"broker_time": at(broker).isoformat()})
            continue
        out.append(raw | {"broker_time": at(broker).isoformat()})
    return out, signed_for


def replay(events: list[dict[str, Any]]) -> tuple[Replay, list[tuple[datetime, Decision]]]:
    """Every decision with the latest broker time read when it was made; stored values are
    checked against the limit as they change (d)."""
    state = Replay()
    made: list[tuple[datetime, Decision]] = []
    latest = at(0)

    def lines_with_time() -> Any:
        # Read lazily, as replay_lines reads: ``latest`` is the broker time read so far.
        nonlocal latest
        for raw in events:
            latest = max(latest, datetime.fromisoformat(raw["broker_time"]))
            yield orjson.dumps(raw)

    for item in replay_lines(lines_with_time(), LOADED, state, 1 << 20,
                             max_stored_bytes=LIMIT):
        if isinstance(item, Decision):
            made.append((latest, item))
        for stored in state.states.values():
            assert len(encode_stored(stored)) <= LIMIT, "(d) a stored value over the limit"
    return state, made


@checked
@given(lines)
def test_no_grant_outlives_broker_time_and_the_longest_lifetime(
        plan: list[tuple[Any, int, int]]) -> None:
    state, made = replay(build(plan)[0])
    longest = timedelta(seconds=MAX_TTL_S)
    for latest, decision in made:
        assert decision.at <= latest, "(a) decided after any broker time read"
        if decision.action == "approve" and decision.rule.id != "post-review-done":
            # (a post-review's approve grants nothing: no resources, no expiry; issue J)
            assert decision.expires_at is not None
            assert decision.expires_at <= latest + longest, "(a) a grant past its bound"
    for stored in state.states.values():
        for subject in stored.tenants.values():
            assert all(grant.expires_at <= (state.last_at or at(0)) + longest
                       for grant in subject.grants)


@checked
@given(lines)
def test_no_lock_ends_without_an_operators_signature_or_its_expiry(
        plan: list[tuple[Any, int, int]]) -> None:
    events, _ = build(plan)
    by_id = {raw["event_id"]: raw for raw in events}
    locks: list[datetime] = []
    releases: set[str] = set()
    for _, decision in replay(events)[1]:
        if decision.action == "lock" and decision.expires_at is not None:
            locks.append(decision.expires_at)  # subject and request locks alike
        if decision.action != "unlock":
            continue
        if decision.rule.id == "lock-expired":
            assert decision.at in locks, "(b) an expiry at a time no lock ends"
            continue
        assert decision.rule.id == "lock-released"
        cause = by_id[decision.cause.event_id]
        assert (cause["type"], cause["by"]) == ("lock.released", "ops"), \
            "(b) only a listed operator, never the subject or a borrowed key, releases"
        assert decision.cause.event_id not in releases, "(b) one signed release, one unlock"
        releases.add(decision.cause.event_id)


@checked
@given(lines)
def test_a_reviewed_approve_covers_only_what_the_review_signed(
        plan: list[tuple[Any, int, int]]) -> None:
    events, signed_for = build(plan)
    counted: list[str | None] = []
    for _, decision in replay(events)[1]:
        if decision.rule.id != "review-approved":
            continue
        request = signed_for[decision.cause.event_id]
        assert request["request_id"] == decision.request_id
        assert set(decision.resources) == {r["id"] for r in request["resources"]}, \
            "(c) an approve of resources the review did not sign"
        counted.append(decision.request_id)
    # Within the request-id retention (30 days; these runs span about a day) an id names
    # one request, and a review counts once for it, replays included.
    assert len(counted) == len(set(counted)), "a review counted twice for one request id"


@checked
@given(lines)
def test_no_decision_id_is_emitted_twice_with_other_contents(
        plan: list[tuple[Any, int, int]]) -> None:
    seen: dict[str, bytes] = {}
    for _, decision in replay(build(plan)[0])[1]:
        body = orjson.loads(encode_decision(decision))
        body.pop("emitted_at")
        content = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        assert seen.setdefault(decision.decision_id, content) == content, \
            f"(e) {decision.decision_id} carries two contents"


def test_bad_lines_are_only_skewed_ones() -> None:
    """The generator's lines are valid: the only ones refused are beyond the skew."""
    events, _ = build([(("release", "ops", [], "", 0), 0, 2 * SKEW_S),
                       (("ask", "r-0", ["a"], "low", 60), 10, 0)])
    items = list(replay_lines([orjson.dumps(raw) for raw in events], LOADED, Replay(),
                              1 << 20, max_stored_bytes=LIMIT))
    assert [item.error_class for item in items if isinstance(item, BadLine)] == ["clock-skew"]
