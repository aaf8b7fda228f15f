"""One combinator (policy/rules/__init__.py): deny wins, reasons in check order."""

from __future__ import annotations

from policy import decide
from schemas.state import SubjectState
from tests.factories import event, raw_request, request
from tests.policy.support import (
    CAP,
    POLICY,
    RULE_ORDER,
    run,
)


def _medium(resource: str, env: str) -> dict[str, str]:
    """A resource claimed medium: the level from which the packaged policy wants a reason."""
    return {"id": resource, "env": env, "sensitivity": "medium"}

class TestDenyWins:
    def test_several_objections_name_the_first_in_rule_order(self) -> None:
        raw = raw_request("r-1", [_medium("a", "prod"), _medium("b", "prod"),
                                  _medium("c", "research"), _medium("d", "staging")],
                          reason=None)
        [verdict] = run([event(raw)])[1]
        assert (verdict.action, verdict.rule.id) == ("deny", "max-active-resources")
        head, also = verdict.reason.split("; also: ")
        assert head == f"request asks for 4 resources, limit is {CAP}"
        assert also.index("request spans mutually exclusive prod and research") \
            < also.index("a reason is required from sensitivity medium")

    def test_reused_id_is_named_before_later_objections(self) -> None:
        before, _ = run([request("r-1", [("a", "prod")])])
        state, verdicts = run([request("r-1", [("b", "prod"), ("c", "research")], t=1,
                                       event_id="e-2")], state=before)
        [verdict] = verdicts
        assert verdict.rule.id == "request-id-reused"
        assert RULE_ORDER.index("request-id-reused") < RULE_ORDER.index(
            "exclusive-environments")
        assert "mutually exclusive" in verdict.reason
        assert state.grants == before.grants

    def test_a_single_objection_has_no_also(self) -> None:
        [verdict] = run([request("r-1", [("a", "prod"), ("b", "research")])])[1]
        assert "also" not in verdict.reason

    def test_a_denied_request_never_gets_an_approve(self) -> None:
        scenarios = [
            [request("r-1", [(x, "prod") for x in "abcd"])],
            [request("r-1", [("a", "prod"), ("b", "research")])],
            [request("r-1", [("a", "prod")]), request("r-1", [("b", "prod")], t=1,
                                                      event_id="e-2")],
            [event(raw_request("r-1", [_medium("a", "prod")], reason=" "))],
        ]
        for events in scenarios:
            state = SubjectState()
            for item in events:
                state, verdicts = decide(state, item, item.at, POLICY)
            actions = [v.action for v in verdicts if v.request_id == "r-1"]
            assert actions == ["deny"], events
            if len(events) == 1:
                assert state.grants == ()
