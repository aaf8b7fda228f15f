"""Lock rules (policy/rules/locks.py) and who may release a lock (policy/releases.py)."""

from __future__ import annotations

import pytest

from tests.factories import raw_event
from tests.policy.rules.support import OPERATORS, brief, policy, release, req, run

LOCKED = [req("r-1", ("a", "dev", "low"), break_glass=True),
          req("r-2", ("b", "dev", "low"), t=1, break_glass=True)]


def test_lock_release_by_a_listed_operator() -> None:
    _, verdicts = run([*LOCKED, release({"subject": "alice"}, t=2),
                       req("r-3", ("c", "dev", "low"), t=3)], policy(OPERATORS))
    assert brief(verdicts)[-2:] == [("unlock", "lock-released", None),
                                    ("approve", "auto-approve", "r-3")]
    assert verdicts[-2].reason == "subject lock released by ops"


@pytest.mark.parametrize(("changes", "why"), [
    ({"key_id": None, "signature": None}, "unsigned"),
    ({"by": None, "key_id": None, "signature": None}, "names no operator"),
    ({"by": "Ops"}, "does not verify"),            # the signature names "ops", not "Ops"
    ({"target": {"subject": "alice", "request_id": "r-1"}}, "does not verify"),
    ({"signature": "AAAA"}, "does not verify"),
    ({"key_id": "ops-op-9"}, "not a key the policy lists"),
])
def test_a_release_not_signed_by_a_listed_operator_changes_nothing(
        changes: dict[str, object], why: str) -> None:
    forged = release({"subject": "alice"}, t=2) | changes
    _, verdicts = run([*LOCKED, forged, req("r-3", ("c", "dev", "low"), t=3)],
                      policy(OPERATORS))
    assert brief(verdicts)[-2:] == [("deny", "release-not-authorized", None),
                                    ("deny", "subject-locked", "r-3")]
    assert why in verdicts[-2].reason


@pytest.mark.parametrize("operator", ["alice", "ALICE", "al\u200bice"])
def test_nobody_releases_their_own_lock(operator: str) -> None:
    keys = OPERATORS + policy_lines(operator) if operator != "alice" else OPERATORS
    _, verdicts = run([*LOCKED, release({"subject": "alice"}, t=2, operator=operator)],
                      policy(keys))
    assert brief(verdicts)[-1] == ("deny", "release-not-authorized", None)
    assert "cannot release their own lock" in verdicts[-1].reason


def policy_lines(operator: str) -> str:
    """A listed key for a look-alike of alice (so only the self-check can refuse it)."""
    from tests.keys import operator_keys_toml

    return operator_keys_toml("defaults", [operator])


def test_a_release_with_nothing_locked_says_nothing() -> None:
    _, verdicts = run([req("r-1", ("a", "dev", "low")),
                       raw_event("lock.released", event_id="e-rel", t=2,
                                 target={"subject": "alice"}, by="mallory")], policy())
    assert brief(verdicts) == [("approve", "auto-approve", "r-1")]
