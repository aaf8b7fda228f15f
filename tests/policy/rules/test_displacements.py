"""The deny_new strategies (policy.rules.displacements: caps and exclusive)."""

from __future__ import annotations

from tests.factories import raw_request
from tests.policy.rules.support import brief, policy, run


def test_deny_new_strategies() -> None:
    active = policy('[defaults.caps]\nstrategy = "deny_new"\nmax_active_resources = 2\n'
                    '[[defaults.exclusive]]\nname = "sod"\nroles = ["approver", "submitter"]\n'
                    'strategy = "deny_new"\n')
    approver = {"id": "a", "env": "dev", "sensitivity": "low", "roles": ["approver"]}
    submitter = {"id": "b", "env": "dev", "sensitivity": "low", "roles": ["submitter"]}
    _, verdicts = run([raw_request("r-1", [approver]),
                       raw_request("r-2", [submitter], t=1),
                       raw_request("r-3", [{**approver, "id": "c"}, {**approver, "id": "d"}],
                                   t=2)], active)
    assert brief(verdicts) == [("approve", "auto-approve", "r-1"),
                               ("deny", "exclusive-environments", "r-2"),
                               ("deny", "max-active-resources", "r-3")]
