"""Waiting out Redis outages: the one retry loop the sink and the notary share.

Both keep what they hold (the sink its batch, the notary its last checkpoint) and try again
with backoff, never skipping; wrong credentials are a configuration error, not an outage
(after one more login, which reads a rotated password file again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.errors import ConfigError

__all__ = ["REDIS_DOWN", "until_redis_answers"]

# The logger these lines have always been written under (the loop lived in the sink), so
# log searches and filters that name it keep finding them, the notary's included.
log = logging.getLogger("streams.audit.sink")
T = TypeVar("T")

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
"""The errors that mean Redis is unreachable for now (retried), not that it refused."""


async def until_redis_answers(action: Callable[[], Awaitable[T]], stop: asyncio.Event,
                              what: str) -> T | None:
    """Run ``action`` until Redis answers, backing off from 0.1 s to 5 s; None once ``stop``
    is set. Wrong credentials are not an outage: they raise :class:`ConfigError`."""
    delay = 0.1
    refused = False
    while True:
        try:
            return await action()
        except AuthenticationError as exc:
            if refused:  # twice: the password file holds no password Redis takes
                raise ConfigError(f"Redis refused the credentials for {what}: {exc}; check "
                                  "JITWATCH_*REDIS_USER and *_PASSWORD_FILE") from exc
            # Once: a rotation (ops/stack rotate-secrets) may have replaced the file just
            # now; the next connection reads it again (streams.audit.keys.PasswordFile).
            refused = True
            log.warning("Redis refused the credentials for %s; logging in again with the "
                        "password file as it is now", what)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        except REDIS_DOWN as exc:
            if stop.is_set():
                return None
            log.warning("Redis unavailable while %s (%s); retrying in %.1f s", what,
                        exc.__class__.__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 5.0)
