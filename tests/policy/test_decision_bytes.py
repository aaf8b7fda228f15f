"""Decisions encoded straight from verdicts (policy.decisions.encode_decisions, issue M)
are the bytes the models give (streams.engine.codec.encode_decision), for any content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from policy import Verdict, encode_decisions, to_decisions
from policy.rules.base import Rule
from schemas.decisions import Cause, DecisionSubject, PolicyRef, StateSummary
from schemas.events import INPUT_EVENT
from streams.engine.codec import encode_decision

EVENT = INPUT_EVENT.validate_python({
    "type": "request.created", "event_id": "e-1", "at": "2026-11-23T10:00:00Z",
    "tenant": "acme", "subject": {"id": "dev@example.com"}, "request_id": "r-1",
    "resources": [{"id": "db/a", "env": "prod", "sensitivity": "low"}]})

# Any text JSON can carry (no lone surrogates: orjson and pydantic both refuse those).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
zones = st.sampled_from([UTC, timezone(timedelta(0)), ZoneInfo("UTC"),
                         timezone(timedelta(hours=5, minutes=30)), ZoneInfo("Europe/Paris")])
times = st.builds(lambda moment, zone: moment.replace(tzinfo=zone),
                  st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
                  zones)
summaries = st.builds(StateSummary, st.integers(0, 10**6), st.integers(0, 10**6),
                      st.lists(text, max_size=3).map(tuple))
verdicts = st.builds(
    Verdict,
    action=st.sampled_from(["approve", "deny", "escalate", "revoke", "lock", "unlock"]),
    rule=st.builds(Rule, id=text, description=text), reason=text, at=times,
    request_id=st.none() | text, targets=st.lists(text, max_size=3).map(tuple),
    resources=st.lists(text, max_size=3).map(tuple), expires_at=st.none() | times,
    before=summaries, after=summaries, key=text, post_review=st.booleans())
causes = st.builds(Cause, event_id=text, type=text, topic=st.none() | text,
                   partition=st.none() | st.integers(0, 2**31),
                   offset=st.none() | st.integers(0, 2**63 - 1))


@settings(max_examples=300, deadline=None)
@given(made=st.lists(verdicts, min_size=1, max_size=3), cause=causes,
       subject=st.tuples(text, st.sampled_from(["human", "workload", "agent"]),
                         st.none() | text),
       policy=st.builds(PolicyRef, version=text, sha256=text), tenant=text,
       emitted_at=st.none() | times)
def test_the_bytes_are_the_models_bytes(made: list[Verdict], cause: Cause,
                                        subject: tuple[str, str, str | None],
                                        policy: PolicyRef, tenant: str,
                                        emitted_at: datetime | None) -> None:
    subject_id, kind, owner = subject
    named = DecisionSubject(id=subject_id, kind=kind, owner=owner)  # type: ignore[arg-type]
    event = EVENT.model_copy(update={"tenant": tenant})
    models = to_decisions(tuple(made), event, policy, cause, emitted_at, named)
    assert encode_decisions(tuple(made), tenant, (subject_id, kind, owner),  # type: ignore[arg-type]
                            policy, cause, emitted_at) \
        == tuple(encode_decision(model) for model in models)
