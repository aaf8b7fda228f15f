"""The sink's own reading of append replies, fed bytes as Redis sends them (no Redis)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from redis._parsers import _AsyncRESP2Parser
from redis.exceptions import (
    BusyLoadingError,
    InvalidResponse,
    NoPermissionError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from streams.audit.chain import Head
from streams.audit.replies import Replies
from streams.audit.transactions import AuditRecord, Transaction, TransactionPlanner

HEAD = Head(4, 9, "ab" * 32)


def transaction(entries: int = 2) -> Transaction:
    records = [AuditRecord(0, offset, b"k", b'{"subject": {"id": "s"}}')
               for offset in range(10, 10 + entries)]
    made = TransactionPlanner("jitwatch:t:audit").plan(0, HEAD, records)
    assert len(made.commands) == 1
    return made


def replies(data: bytes, timeout: float | None = None, eof: bool = True) -> Replies:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return Replies(SimpleNamespace(_reader=reader, _parser=_AsyncRESP2Parser(65536),
                                    socket_timeout=timeout))


async def test_appends_that_went_well_are_read_whole() -> None:
    made = transaction()
    read = replies(made.expected * 2)
    assert await read.appended(made) is True
    assert await read.appended(made) is True
    assert read.drained


async def test_an_append_refused_for_a_stale_head_is_not_applied() -> None:
    read = replies(b"-STALEHEAD the chain head is seq 7\r\n")
    assert await read.appended(transaction()) is False
    assert read.drained


@pytest.mark.parametrize(("reply", "error"), [
    (b"-NOPERM this user has no permissions to run the 'fcall' command\r\n",
     NoPermissionError),
    (b"-BADLINK entry 0-11 does not link to seq 4\r\n", ResponseError),
    (b"-ERR Function not found\r\n", ResponseError),
    (b"-LOADING Redis is loading the dataset in memory\r\n", BusyLoadingError),
])
async def test_any_other_error_raises(reply: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        await replies(reply).appended(transaction())


async def test_a_wrong_count_is_not_taken_for_success() -> None:
    with pytest.raises(InvalidResponse):
        await replies(b":1\r\n").appended(transaction())


async def test_a_silent_redis_times_out_as_an_outage() -> None:
    with pytest.raises(RedisTimeoutError):
        await replies(b"", timeout=0.05, eof=False).appended(transaction())
