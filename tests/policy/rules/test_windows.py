"""Rule time-window (policy/rules/windows.py)."""

from __future__ import annotations

from tests.policy.rules.support import brief, policy, req, run


def test_time_window_in_its_time_zone() -> None:
    active = policy('[[defaults.windows]]\nenvs = ["prod"]\ntimezone = "Europe/Berlin"\n'
                    'start = "08:00"\nend = "18:00"\noutside = "deny"\n')
    # T0 is Monday 2026-11-23 10:00 UTC = 11:00 in Berlin; +10 h is 21:00 there.
    _, verdicts = run([req("r-1", ("db", "prod", "low")),
                       req("r-2", ("db2", "prod", "low"), t=10 * 3600),
                       req("r-3", ("db3", "dev", "low"), t=10 * 3600 + 1)], active)
    verdicts = [v for v in verdicts if v.rule.id != "ttl-expired"]
    assert brief(verdicts) == [("approve", "auto-approve", "r-1"),
                               ("deny", "time-window", "r-2"),
                               ("approve", "auto-approve", "r-3")]
    assert "Mon 21:00" in verdicts[1].reason
