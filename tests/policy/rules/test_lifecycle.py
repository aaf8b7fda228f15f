"""A request's life (policy/rules/lifecycle.py): id reuse, withdrawal, task completion."""

from __future__ import annotations

import pytest

from tests.factories import at, event, raw_event, request
from tests.policy.rules.support import REVIEWED, policy, req
from tests.policy.rules.support import brief as brief_raw
from tests.policy.rules.support import run as run_raw
from tests.policy.support import (
    brief,
    live,
    run,
)


class TestRequestIds:
    def test_reusing_a_live_request_id_is_denied(self) -> None:
        before, _ = run([request("r-1", [("a", "prod")], ttl_s=600)])
        state, verdicts = run([request("r-1", [("b", "prod")], t=1, event_id="e-again")],
                              state=before)
        assert brief(verdicts) == [("deny", "request-id-reused", "r-1", ())]
        assert verdicts[0].reason == "request r-1 is already live or pending"
        assert state.grants == before.grants

    @pytest.mark.parametrize("end", ["request.withdrawn", "task.completed"])
    def test_an_ended_request_id_may_be_used_again(self, end: str) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            event(raw_event(end, event_id="e-end", t=1, request_id="r-1")),
            request("r-1", [("b", "prod")], t=2, event_id="e-again"),
        ])
        assert [v.action for v in verdicts] == ["approve", "revoke", "approve"]
        assert [r.id for r in state.grants[0].resources] == ["b"]


class TestEnds:
    @pytest.mark.parametrize(("end", "rule"), [("request.withdrawn", "request-withdrawn"),
                                               ("task.completed", "task-completed")])
    def test_withdrawal_and_completion_revoke_the_live_grant(self, end: str,
                                                             rule: str) -> None:
        state, verdicts = run([
            request("r-1", [("a", "prod")]),
            request("r-2", [("b", "prod")], t=1),
            event(raw_event(end, event_id="e-end", t=5, request_id="r-1")),
            event(raw_event(end, event_id="e-none", t=6, request_id="r-unknown")),
        ])
        assert brief(verdicts)[2:] == [("revoke", rule, "r-1", ("r-1",))]
        assert verdicts[2].at == at(5)
        assert live(state) == ["r-2"]
        assert state.applied[-1] == "e-none"


def test_withdrawing_a_pending_request() -> None:
    state, verdicts = run_raw([req("r-1", ("db", "prod", "high"), ticket="OPS-1"),
                           raw_event("request.withdrawn", event_id="e-w", t=1,
                                     request_id="r-1")], policy(REVIEWED))
    assert brief_raw(verdicts)[-1] == ("deny", "request-withdrawn", "r-1")
    assert state.pending == ()
