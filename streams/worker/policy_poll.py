"""The worker's side of policy change control: poll the file on a faust timer, send each
load's record through the worker's producer, then switch."""

from __future__ import annotations

import faust

from streams.control.policy import POLICY_HEADERS, PolicyControl, policy_load_record
from streams.control.rollback import IN_FORCE_KEY
from streams.settings import PolicySettings, TopicSettings
from streams.worker.observe import PolicyState

__all__ = ["attach_policy_control"]


def attach_policy_control(app: faust.App, topics: TopicSettings, policy: PolicySettings,
                          control: PolicyControl, state: PolicyState | None = None) -> None:
    """Poll the policy file from the worker; send each load's record, then switch.
    ``state`` (metrics and readiness) is told of each switch and each refusal."""

    async def poll_policy() -> None:
        polled = control.poll()
        if polled is None:
            if state is not None and state.refused is not None and control.file_in_force():
                state.loaded(control.policy())  # the refused change was undone
            return
        outcome, candidate, reason = polled
        key, value = policy_load_record(topics.app_id, outcome, control.current, candidate,
                                        reason, control.path)
        await (await app.producer.send(topics.topic_decisions, key, value, partition=None,
                                       timestamp=None, headers=POLICY_HEADERS))
        if candidate is None:
            if state is not None:
                state.refuse(reason)
        else:
            control.accept(candidate)
            if state is not None:
                state.loaded(control.policy())
            if control.signed:  # the app's policy in force, for every worker's next start
                await (await app.producer.send(topics.topic_policy, IN_FORCE_KEY,
                                               control.in_force_value(), partition=None,
                                               timestamp=None, headers=None))

    app.timer(interval=policy.policy_poll_s, name="policy-poll")(poll_policy)
