"""Attacks on the trust boundary (issue H), kept as tests once fixed.

Each case under ``_attacks/`` is replayed as ``simulate`` would; each test asserts what must
hold (``_attacks/README.md``). Each was ``xfail(strict=True)`` until its defence existed:
look-alike resource ids are refused since schemas/canonical.py, another spelling of a
subject is the same subject since state is keyed by its canonical id, a replayed release is
dropped since signed events are remembered (``SubjectState.signed``), and decision ids are
derived from the decision's contents (policy/decisions.py)."""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas.decisions import Decision
from streams.engine.codec import encode_decision
from tests.golden.test_golden import _policy, _replay

HERE = Path(__file__).parent / "_attacks"


def _decisions(case: str) -> list[Decision]:
    folder = HERE / case
    lines = (folder / "events.jsonl").read_bytes().splitlines()
    decisions, _ = _replay(lines, _policy(folder))
    return decisions


def _approved(decisions: list[Decision]) -> set[str]:
    return {d.request_id for d in decisions if d.action == "approve" and d.request_id}


def test_a_replayed_operator_release_releases_nothing() -> None:
    decisions = _decisions("release-replay")
    unlocks = [d for d in decisions if d.action == "unlock"]
    assert len(unlocks) == 1, f"{len(unlocks)} unlocks from one signed release"
    assert "r-9" not in _approved(decisions)


def test_no_decision_id_is_emitted_twice_with_other_contents() -> None:
    seen: dict[str, bytes] = {}
    for decision in _decisions("decision-id-reuse"):
        body = orjson.loads(encode_decision(decision))
        body.pop("emitted_at", None)
        content = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        earlier = seen.setdefault(decision.decision_id, content)
        assert earlier == content, f"{decision.decision_id} carries two contents"


def test_another_spelling_of_a_locked_subject_is_not_approved() -> None:
    approved = _approved(_decisions("subject-spelling"))
    assert not approved & {"r-3", "r-4"}, f"approved {sorted(approved & {'r-3', 'r-4'})}"


def test_look_alike_resource_ids_do_not_escape_the_catalog() -> None:
    approved = _approved(_decisions("resource-lookalike"))
    assert not approved & {"r-3", "r-4"}, f"approved {sorted(approved & {'r-3', 'r-4'})}"


def test_an_event_id_taken_first_does_not_suppress_the_real_event() -> None:
    """The subject sends a harmless event under the id it predicts the gateway will use;
    the gateway's out-of-scope activity must still lock it."""
    decisions = _decisions("event-id-squat")
    assert [(d.action, d.rule.id) for d in decisions if d.cause.event_id == "gw-s-1-2"
            and d.action == "lock"] == [("lock", "session-out-of-scope")]
    assert "r-2" not in _approved(decisions)


def test_an_event_id_taken_first_does_not_keep_a_finished_task_alive() -> None:
    decisions = _decisions("event-id-squat-task")
    ends = [(d.action, d.rule.id) for d in decisions if d.request_id == "r-1"
            and d.action == "revoke"]
    assert ends == [("revoke", "task-completed")]


def test_an_event_sent_early_by_the_subject_does_not_suppress_the_gateways() -> None:
    """The subject sends the gateway's exact future activity while its grant is live; the
    gateway's record, arriving after the grant ended, is another record and must lock."""
    decisions = _decisions("presend-activity")
    assert ("lock", "session-out-of-scope") in [(d.action, d.rule.id) for d in decisions]
    assert "r-2" not in _approved(decisions)


def test_two_events_sharing_an_id_and_a_millisecond_get_two_decision_ids() -> None:
    decisions = _decisions("decision-id-reuse") + _decisions("decision-id-type")
    seen: dict[str, bytes] = {}
    for decision in decisions:
        body = orjson.loads(encode_decision(decision))
        body.pop("emitted_at", None)
        content = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        assert seen.setdefault(decision.decision_id, content) == content, decision.decision_id
