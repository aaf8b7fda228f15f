"""Golden corpus: hand-written events and expected decisions, one folder per case.

Each ``tests/golden/<case>/`` holds ``events.jsonl`` (contract input, one event a line),
optionally ``policy.toml`` (else the packaged ``policy/default.toml``), ``expected.jsonl``
(one line per expected decision, in output order, only the fields that matter) and a
``README.md``. Optional files:

- ``KNOWN_FAILURE``: the core disagrees with the rule's documented meaning; its text says
  how. The case is marked ``xfail(strict=True)``, so fixing the core makes it fail loudly
  until the file is removed.
- ``bad_lines.txt``: the line numbers that must be rejected; without it every non-blank
  line must be a valid event (so a typo in a fixture cannot silently skip a line).
- ``notices.jsonl`` (issue J): the exact bytes of the notices (``jit.notice/v1`` records)
  ``jitwatch simulate --notices --format jsonl`` writes for the case, in order; the replay
  must give them again, and the decisions must not change for asking for them.

Expected lines compare ``action``, ``rule`` (the rule id), ``request_id`` and ``targets``,
and when present ``at``/``expires_at`` (RFC 3339 Z), ``post_review``, ``tenant`` and
``reason_contains`` (a substring of the reason).

Each case also keeps ``decisions.jsonl``: the exact bytes ``jitwatch simulate --format jsonl``
wrote for it when issue G began moving code. Every replay must give those bytes again (ids,
reasons, summaries, policy digests), and so must the generated corpus in ``_mixed/``
(``make_mixed.py``), where many rules meet. Refresh them only with a change that means to
alter decisions, and say so in its commit.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas._base import format_time
from schemas.decisions import Decision
from schemas.notices import Notice
from schemas.policy import LoadedPolicy, parse_policy
from streams.engine.codec import encode_decision, encode_notice
from streams.engine.replay import BadLine, Replay, replay_lines

HERE = Path(__file__).parent
MAX_EVENT_BYTES = 64 * 1024  # the settings' default (JITWATCH_MAX_EVENT_BYTES)
COMPARED = ("action", "rule", "request_id", "targets", "at", "expires_at", "post_review",
            "tenant", "reason_contains")
REQUIRED = ("action", "rule", "request_id", "targets")
UNTRIGGERABLE: set[str] = set()
"""Rule ids no input can make fire (none since reviews lock requests: request-locked)."""


def _case_dirs() -> list[Path]:
    return sorted(path for path in HERE.iterdir()
                  if (path / "events.jsonl").is_file() and not path.name.startswith("_"))


def _params() -> list[Any]:
    params = []
    for path in _case_dirs():
        known = path / "KNOWN_FAILURE"
        marks = ([pytest.mark.xfail(strict=True, reason=known.read_text().strip())]
                 if known.is_file() else [])
        params.append(pytest.param(path, id=path.name, marks=marks))
    return params


def _policy(case: Path) -> LoadedPolicy:
    own = case / "policy.toml"
    if own.is_file():
        return parse_policy(own.read_text(encoding="utf-8"), str(own))
    text = resources.files("policy").joinpath("default.toml").read_text(encoding="utf-8")
    return parse_policy(text, "packaged default policy")


def _replay(lines: list[bytes], policy: LoadedPolicy, notices: list[Notice] | None = None,
            ) -> tuple[list[Decision], list[BadLine]]:
    decisions: list[Decision] = []
    bad: list[BadLine] = []
    for item in replay_lines(lines, policy, Replay(), MAX_EVENT_BYTES,
                             notices=notices is not None):
        if isinstance(item, BadLine):
            bad.append(item)
        elif isinstance(item, Decision):
            decisions.append(item)
        elif isinstance(item, Notice) and notices is not None:
            notices.append(item)
        else:
            raise AssertionError(f"golden case has an undecidable expiry: {item.message}")
    return decisions, bad


def _produced(decision: Decision) -> dict[str, Any]:
    return {
        "action": decision.action,
        "rule": decision.rule.id,
        "request_id": decision.request_id,
        "targets": list(decision.targets),
        "at": format_time(decision.at),
        "expires_at": None if decision.expires_at is None else format_time(decision.expires_at),
        "post_review": decision.post_review,
        "tenant": decision.tenant,
        "reason": decision.reason,
    }


def _mismatches(expected: dict[str, Any], produced: dict[str, Any]) -> list[str]:
    found = []
    for key, want in expected.items():
        if key == "reason_contains":
            if want not in produced["reason"]:
                found.append(f"reason {produced['reason']!r} lacks {want!r}")
        elif produced[key] != want:
            found.append(f"{key}: expected {want!r}, got {produced[key]!r}")
    return found


def _brief(produced: dict[str, Any]) -> str:
    text = (f"{produced['action']:<8} {produced['rule']:<22} {produced['request_id']} "
            f"targets={produced['targets']} at={produced['at']}")
    if produced["expires_at"] is not None:
        text += f" expires_at={produced['expires_at']}"
    if produced["post_review"]:
        text += " post_review"
    return f"{text}  [{produced['tenant']}] {produced['reason']}"


def _expected(case: Path) -> list[dict[str, Any]]:
    lines = [line for line in (case / "expected.jsonl").read_bytes().splitlines() if line.strip()]
    expected = [orjson.loads(line) for line in lines]
    for number, line in enumerate(expected, start=1):
        unknown = set(line) - set(COMPARED)
        missing = set(REQUIRED) - set(line)
        assert not unknown, f"{case.name}/expected.jsonl:{number}: unknown {sorted(unknown)}"
        assert not missing, f"{case.name}/expected.jsonl:{number}: missing {sorted(missing)}"
    return expected


def _bad_line_numbers(case: Path) -> list[int]:
    listed = case / "bad_lines.txt"
    return [int(word) for word in listed.read_text().split()] if listed.is_file() else []


@pytest.mark.parametrize("case", _params())
def test_golden_case(case: Path) -> None:
    policy = _policy(case)
    lines = (case / "events.jsonl").read_bytes().splitlines()
    expected = _expected(case)
    decisions, bad = _replay(lines, policy)

    assert [item.number for item in bad] == _bad_line_numbers(case), (
        f"{case.name}: rejected lines differ from bad_lines.txt: "
        + "; ".join(f"line {item.number} ({item.error_class}): {item.message}" for item in bad))

    produced = [_produced(decision) for decision in decisions]
    problems = []
    for index in range(max(len(expected), len(produced))):
        if index >= len(produced):
            problems.append(f"#{index + 1}: expected {expected[index]}, got nothing")
        elif index >= len(expected):
            problems.append(f"#{index + 1}: unexpected {_brief(produced[index])}")
        else:
            problems.extend(f"#{index + 1}: {text}"
                            for text in _mismatches(expected[index], produced[index]))
    assert not problems, (
        f"{case.name}: decisions differ from expected.jsonl\n  "
        + "\n  ".join(problems)
        + "\nproduced:\n  " + "\n  ".join(_brief(item) for item in produced))

    # Replays are byte-identical, decision ids included, to the bytes kept for the case.
    encoded = [encode_decision(decision) for decision in decisions]
    _assert_same_bytes(case, encoded)
    notices: list[Notice] = []
    again, _ = _replay(lines, policy, notices)
    assert [encode_decision(decision) for decision in again] == encoded, (
        f"{case.name}: a second replay (with notices) gave different decision bytes")
    kept_notices = case / "notices.jsonl"
    if kept_notices.is_file():
        assert [encode_notice(notice) for notice in notices] == \
            kept_notices.read_bytes().splitlines(), (
            f"{case.name}: notices differ from notices.jsonl:\n  "
            + "\n  ".join(encode_notice(notice).decode() for notice in notices))

    # A bad line yields no decision and changes nothing: dropping the bad lines gives the
    # same bytes, and no decision cites the event id of a rejected line alone.
    if bad:
        rejected = {item.number for item in bad}
        kept = [line for number, line in enumerate(lines, start=1) if number not in rejected]
        without, _ = _replay(kept, policy)
        assert [encode_decision(decision) for decision in without] == encoded, (
            f"{case.name}: the bad lines changed the decisions")
        good_ids = {orjson.loads(line)["event_id"] for line in kept if line.strip()}
        bad_ids = set()
        for number in rejected:
            try:
                data = orjson.loads(lines[number - 1])
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict) and isinstance(data.get("event_id"), str):
                bad_ids.add(data["event_id"])
        cited = {decision.cause.event_id for decision in decisions}
        assert not (bad_ids - good_ids) & cited, f"{case.name}: a bad line produced a decision"


def _assert_same_bytes(case: Path, encoded: list[bytes]) -> None:
    kept = (case / "decisions.jsonl").read_bytes().splitlines()
    for number, (want, got) in enumerate(zip(kept, encoded, strict=False), start=1):
        assert got == want, (f"{case.name}: decision {number} differs from decisions.jsonl\n"
                             f"  kept:     {want.decode()}\n  produced: {got.decode()}")
    assert len(encoded) == len(kept), (
        f"{case.name}: {len(encoded)} decisions, decisions.jsonl keeps {len(kept)}")


def test_mixed_corpus_bytes() -> None:
    case = HERE / "_mixed"
    lines = (case / "events.jsonl").read_bytes().splitlines()
    decisions, bad = _replay(lines, _policy(case))
    assert not bad, f"_mixed: rejected lines {[item.number for item in bad]}"
    _assert_same_bytes(case, [encode_decision(decision) for decision in decisions])


def test_corpus_covers_every_rule() -> None:
    from policy import RULES

    covered: set[str] = set()
    for case in _case_dirs():
        covered.update(line["rule"] for line in _expected(case))
    missing = {rule.id for rule in RULES} - covered - UNTRIGGERABLE
    assert not missing, f"no golden case expects these rules: {sorted(missing)}"
    assert not covered - {rule.id for rule in RULES}, "expected.jsonl names unknown rules"
