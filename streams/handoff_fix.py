"""A cheaper hand-off of each fetched record from faust's consumer to the stream.

faust's fetch loop (``Consumer._drain_messages``) passes every record on with
``self.wait_first(callback(message), self.suspend_flow.wait())``, so that a rebalance can
interrupt a hand-off that waits for room in a full stream queue. ``Service.wait_first``
makes four tasks for that (the callback, the suspension wait, and the service's stopped and
crashed waits), runs ``asyncio.wait`` on them and cancels three: per record, whether or not
anything had to wait. py-spy put a third of faust's bare stream CPU there (bench/e2e.py's
``faust_stream``).

The callback nearly always finishes on its first step: the queue has room, nothing waits.
Here that first step runs inline. Only if the callback does have to wait does the rest of
it run as a task, raced against the other awaitables by faust's own ``wait_first``, as
before. faust would have run the same first step first too: its callback task is created,
so scheduled, before the others.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any

from faust.transport.consumer import Consumer
from mode.services import Service, WaitResults

__all__ = ["fast_wait_first", "install_handoff_fix"]


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    # Drive a coroutine whose first step already ran and yielded ``yielded``: what
    # ``await`` would have done had the coroutine been awaited from its start.
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        # Whatever the awaiting task throws in (a cancellation above all) is the
        # coroutine's to handle, as it would be under a plain await.
        except BaseException as exc:  # noqa: BLE001 - passed on, not swallowed
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _rest_of(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _resume(coro, yielded)


async def fast_wait_first(
    self: Service, *coros: Any, timeout: Any = None,  # noqa: ASYNC109 - faust's signature
) -> Any:
    """``Service.wait_first`` that runs a first coroutine's first step inline.

    If that step finishes it, its result wins and the other coroutines (not started yet)
    are closed; otherwise the rest of it joins faust's ``wait_first`` with the others.
    Anything else (a timeout, an event, a stopped or crashed service) goes to faust's.
    """
    first = coros[0] if coros else None
    if (timeout is None and isinstance(first, types.CoroutineType)
            and not self._stopped.is_set() and not self._crashed.is_set()):
        try:
            yielded = first.send(None)
        except StopIteration as stop:
            _close(coros[1:])
            return WaitResults([first], [stop.value], False)
        except BaseException:
            _close(coros[1:])  # faust would have cancelled their tasks
            raise
        return await Service.wait_first(self, _rest_of(first, yielded), *coros[1:])
    return await Service.wait_first(self, *coros, timeout=timeout)


def _close(coros: tuple[Any, ...]) -> None:
    # Coroutines never started: closing them spares the "never awaited" warning.
    for coro in coros:
        if isinstance(coro, types.CoroutineType):
            coro.close()


def install_handoff_fix() -> None:
    """Give faust's consumers :func:`fast_wait_first` (idempotent).

    Within the consumer only the fetch loop passes coroutines to ``wait_first``; its other
    waits (``wait(event)``) take faust's path unchanged.
    """
    # mode types wait_first as a method of its own signature; this one takes the same calls.
    Consumer.wait_first = fast_wait_first  # type: ignore[method-assign]
