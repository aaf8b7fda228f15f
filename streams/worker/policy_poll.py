"""The worker's side of policy change control: poll the file on a faust timer, send each
load's record through the worker's producer, then switch."""

from __future__ import annotations

import faust

from streams.control.policy import POLICY_HEADERS, PolicyControl, policy_load_record
from streams.control.rollback import IN_FORCE_KEY
from streams.settings import PolicySettings, TopicSettings

__all__ = ["attach_policy_control"]


def attach_policy_control(app: faust.App, topics: TopicSettings, policy: PolicySettings,
                          control: PolicyControl) -> None:
    """Poll the policy file from the worker; send each load's record, then switch."""

    async def poll_policy() -> None:
        polled = control.poll()
        if polled is None:
            return
        outcome, candidate, reason = polled
        key, value = policy_load_record(topics.app_id, outcome, control.current, candidate,
                                        reason, control.path)
        await (await app.producer.send(topics.topic_decisions, key, value, partition=None,
                                       timestamp=None, headers=POLICY_HEADERS))
        if candidate is not None:
            control.accept(candidate)
            if control.signed:  # the app's policy in force, for every worker's next start
                await (await app.producer.send(topics.topic_policy, IN_FORCE_KEY,
                                               control.in_force_value(), partition=None,
                                               timestamp=None, headers=None))

    app.timer(interval=policy.policy_poll_s, name="policy-poll")(poll_policy)
