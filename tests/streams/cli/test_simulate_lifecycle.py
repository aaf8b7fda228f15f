"""``simulate`` and issue J: ``--diff`` shows what a change of the lifecycle rules would
change (extensions, thresholds, post-reviews), and ``--notices`` shows the notices the
stream sends to ``jit.notices``."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.cli.main import main
from tests.paths import REPO

GOLDEN = REPO / "tests" / "golden"


def _candidate(tmp_path: Path, case: str, old: str, new: str) -> tuple[Path, Path]:
    """The case's events and its policy with ``old`` replaced by ``new`` (another version)."""
    text = (GOLDEN / case / "policy.toml").read_text(encoding="utf-8")
    assert old in text
    changed = tmp_path / f"{case}.toml"
    changed.write_text(text.replace(old, new).replace(
        f'version = "golden-{case}"', f'version = "candidate-{case}"'), encoding="utf-8")
    return GOLDEN / case / "events.jsonl", changed


def _diff(events: Path, case: str, candidate: Path,
          capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["simulate", "--events", str(events), "--policy",
                 str(GOLDEN / case / "policy.toml"), "--diff", str(candidate)]) == 1
    return capsys.readouterr().out


@pytest.mark.parametrize(("case", "old", "new", "before", "after"), [
    pytest.param("extension-approved", "[[defaults.step_up.reviewers]]",
                 "[defaults.ttl]\nmax_extensions = 0\n\n[[defaults.step_up.reviewers]]",
                 "- approve r-1 r-1 [extension-approved]", "+ deny r-1  [extension-limit]",
                 id="max_extensions"),
    pytest.param("review-threshold", "approvals = { critical = 2 }",
                 "approvals = { critical = 1 }", "- escalate r-1  [review-threshold]",
                 "+ approve r-1  [review-approved]", id="step_up.approvals"),
    pytest.param("post-review-done", "[[defaults.step_up.reviewers]]",
                 '[defaults.break_glass]\non_rejected = "none"\n\n[[defaults.step_up.reviewers]]',
                 "- lock r-2  [post-review-done]", "+ deny r-2  [post-review-done]",
                 id="break_glass.on_rejected"),
    pytest.param("post-review-done", "[[defaults.step_up.reviewers]]",
                 "[defaults.break_glass]\nreview_within_s = 1800\n\n"
                 "[[defaults.step_up.reviewers]]", None,  # a late review still closes it
                 "+ escalate r-1  [post-review-overdue]", id="break_glass.review_within_s"),
])
def test_diff_shows_the_lifecycle_rules_a_policy_change_moves(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, old: str, new: str,
        before: str | None, after: str) -> None:
    events, candidate = _candidate(tmp_path, case, old, new)
    out = _diff(events, case, candidate, capsys)
    assert before is None or f"  {before}" in out.splitlines()
    assert f"  {after}" in out.splitlines()


def test_notices_come_with_the_decisions_only_when_asked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = GOLDEN / "expiry-notice"
    args = ["simulate", "--events", str(case / "events.jsonl"), "--policy",
            str(case / "policy.toml"), "--format", "jsonl"]
    assert main(args) == 0
    plain = capsys.readouterr()
    assert plain.out.encode() == (case / "decisions.jsonl").read_bytes()
    assert main([*args, "--notices"]) == 0
    both = capsys.readouterr()
    records = [orjson.loads(line) for line in both.out.splitlines()]
    assert [r["schema"] for r in records].count("jit.notice/v1") == 2
    assert [line for line in both.out.encode().splitlines() if b'"jit.notice/v1"' in line] \
        == (case / "notices.jsonl").read_bytes().splitlines()
    # In time order with the decisions: the two notices come before r-1's expiry.
    kinds = [r.get("kind") or r["rule"]["id"] for r in records]
    assert kinds.index("expiry-soon") < kinds.index("ttl-expired")
    assert "4 events, 5 decisions, 2 notices, 0 bad lines skipped" in both.err
    assert main([*args[:-2], "--notices"]) == 0
    text = capsys.readouterr().out
    assert "NOTICE   dev@example.com" in text
    assert "[expiry-soon] grant r-1 expires at 2026-11-23T11:00:00Z" in text


def test_diff_with_notices_lists_a_notice_the_candidate_moves(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, candidate = _candidate(tmp_path, "expiry-notice", "before_expiry_s = [900, 300]",
                                   "before_expiry_s = [600]")
    case = GOLDEN / "expiry-notice"
    assert main(["simulate", "--events", str(events), "--policy", str(case / "policy.toml"),
                 "--diff", str(candidate)]) == 0, "no decision changes"
    capsys.readouterr()
    assert main(["simulate", "--events", str(events), "--policy", str(case / "policy.toml"),
                 "--diff", str(candidate), "--notices"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "  - notice r-1 due 2026-11-23T11:00:00Z [expiry-soon]" in out
    assert "tick:2026-11-23T10:45:00Z:" in out
    assert "tick:2026-11-23T10:50:00Z:" in out
