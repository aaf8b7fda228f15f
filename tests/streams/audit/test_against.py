"""verify's limits on unsigned entries and its view of entries before retention (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.audit.against import UnsignedLimits, _retention, unsigned_problem
from streams.audit.chain import GENESIS, Checkpoint, Head

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _checkpoint(seq: int, at: str = "2026-12-06T11:59:50Z") -> Checkpoint:
    return Checkpoint(0, Head(seq, seq, "ab" * 32), GENESIS, at, "k")


def test_a_chain_without_a_checkpoint_is_unsigned() -> None:
    problem = unsigned_problem(0, 5, [], UnsignedLimits(NOW, 20, 100))
    assert problem is not None
    assert problem.verdict == "unsigned"
    assert "no checkpoint" in problem.what
    assert unsigned_problem(0, 0, [], UnsignedLimits(NOW, 20, 100)) is None


def test_a_stale_newest_checkpoint_or_too_many_unsigned_entries_is_unsigned() -> None:
    recent, stale = _checkpoint(3), _checkpoint(3, "2026-12-06T11:00:00Z")
    assert unsigned_problem(0, 10, [recent], UnsignedLimits(NOW, 20, 100)) is None
    aged = unsigned_problem(0, 10, [stale], UnsignedLimits(NOW, 20, 100))
    assert aged is not None
    assert "3600 s old and 6 newer entries" in aged.what
    assert aged.seq == 4
    many = unsigned_problem(0, 10, [recent], UnsignedLimits(NOW, 20, 5))
    assert many is not None
    assert "more than --max-unsigned 5" in many.what
    # Everything signed: an old checkpoint is fine (an idle chain).
    assert unsigned_problem(0, 4, [stale], UnsignedLimits(NOW, 20, 5)) is None


def test_entries_before_retention_are_a_note_when_a_checkpoint_covers_them() -> None:
    chain = [(offset, b"") for offset in range(10)]
    problem, compared, note = _retention(0, chain, 4, [_checkpoint(2), _checkpoint(6)], 6)
    assert (problem, compared) == (None, 6)
    assert note == "4 entries before retention, covered by checkpoint #1 (seq 6)"
    problem, _, note = _retention(0, chain, 4, [_checkpoint(2)], 6)
    assert note is None
    assert problem is not None
    assert (problem.verdict, problem.seq) == ("incomplete", 3)
    assert "not covered by a checkpoint" in problem.what
