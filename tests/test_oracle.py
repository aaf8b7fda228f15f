"""The oracle itself: decisions compared by id and content, on both sides.

Decision ids are content hashes (``policy/decisions.py``), so one id standing for two
contents is a bug wherever it shows up: in the stream (a redelivery that decided
differently) or in the replay. Neither may be hidden by keeping the last one seen.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from tests.oracle import compare
from tests.paths import REPO


def _decisions() -> list[dict[str, Any]]:
    """Real decisions, as ``simulate`` wrote them for a golden case."""
    path = REPO / "tests/golden/review-denied/decisions.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def _other_content(decision: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(decision)
    changed["reason"] += " (other)"
    return changed


def test_equal_sets_compare_equal_and_redeliveries_are_counted() -> None:
    decisions = _decisions()
    report = compare(decisions + decisions[:1], decisions)
    assert report.equal, str(report)
    assert (report.matched, report.duplicates) == (len(decisions), 1)


def test_two_contents_for_one_id_in_the_replay_is_a_conflict_not_an_overwrite() -> None:
    decisions = _decisions()
    for pair in ([decisions[0], _other_content(decisions[0])],
                 [_other_content(decisions[0]), decisions[0]]):
        report = compare(decisions, [*pair, *decisions[1:]])
        assert not report.equal, f"{pair[1]['reason']!r} hid {pair[0]['reason']!r}"
        assert report.conflicting, str(report)


def test_two_contents_for_one_id_in_the_stream_is_a_conflict() -> None:
    decisions = _decisions()
    report = compare([*decisions, _other_content(decisions[0])], decisions)
    assert not report.equal
    assert len(report.conflicting) == 1, str(report)


def test_any_field_of_the_content_counts_not_only_the_summary() -> None:
    decisions = _decisions()
    changed = copy.deepcopy(decisions[0])
    changed["state"]["after"]["active_grants"] += 1
    report = compare([changed, *decisions[1:]], decisions)
    assert len(report.conflicting) == 1, str(report)


def test_where_and_when_it_was_emitted_are_not_content() -> None:
    decisions = _decisions()
    moved = copy.deepcopy(decisions[0])
    moved["emitted_at"] = "2030-01-01T00:00:00Z"
    moved["cause"].update(topic="jit.requests", partition=3, offset=99)
    report = compare([moved, *decisions[1:]], decisions)
    assert report.equal, str(report)
