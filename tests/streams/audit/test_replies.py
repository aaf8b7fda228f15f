"""The sink's own reading of transaction replies, fed bytes as Redis sends them (no Redis)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from redis._parsers import _AsyncRESP2Parser
from redis.exceptions import (
    BusyLoadingError,
    ExecAbortError,
    NoPermissionError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from streams.audit.chain import Head
from streams.audit.replies import Replies
from streams.audit.transactions import AuditRecord, Transaction, TransactionPlanner

HEAD = Head(4, 9, "ab" * 32)
HEAD_REPLY = (b"+OK\r\n*1\r\n*2\r\n$4\r\n0-10\r\n*6\r\n$3\r\nseq\r\n$1\r\n4\r\n"
              b"$6\r\noffset\r\n$1\r\n9\r\n$4\r\nhash\r\n$64\r\n" + b"ab" * 32 + b"\r\n")


def transaction(entries: int = 2, indexes: int = 1) -> Transaction:
    records = [AuditRecord(0, offset, b"k", b'{"subject": {"id": "s"}}')
               for offset in range(10, 10 + entries)]
    made = TransactionPlanner("jitwatch:t:audit").plan(0, HEAD, records)
    assert len(made.commands) == entries + indexes
    return made


def replies(data: bytes, timeout: float | None = None, eof: bool = True) -> Replies:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return Replies(SimpleNamespace(_reader=reader, _parser=_AsyncRESP2Parser(65536),
                                    socket_timeout=timeout))


def ok_reply(made: Transaction) -> bytes:
    return (b"+OK\r\n" + b"+QUEUED\r\n" * len(made.commands) + made.expected
            + b":1\r\n" * (len(made.commands) - made.entries))


async def test_a_transaction_that_went_well_is_read_whole() -> None:
    made = transaction()
    read = replies(ok_reply(made) + HEAD_REPLY)
    assert await read.transaction(made) is True
    assert await read.head() == HEAD
    assert read.drained


@pytest.mark.parametrize("refused", [b"*-1\r\n", b"_\r\n"], ids=["resp2", "resp3"])
async def test_an_exec_refused_after_watch_is_not_applied(refused: bytes) -> None:
    made = transaction()
    read = replies(b"+OK\r\n" + b"+QUEUED\r\n" * len(made.commands) + refused)
    assert await read.transaction(made) is False
    assert read.drained


async def test_a_command_refused_when_queued_raises_its_error() -> None:
    made = transaction()
    read = replies(b"+OK\r\n+QUEUED\r\n-NOPERM this user has no permissions\r\n+QUEUED\r\n"
                   b"-EXECABORT Transaction discarded because of previous errors.\r\n")
    with pytest.raises(NoPermissionError):
        await read.transaction(made)


async def test_a_command_failing_inside_exec_raises() -> None:
    made = transaction()
    exec_reply = made.expected.replace(made.expected.split(b"\r\n", 1)[0], b"*3") + \
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    read = replies(b"+OK\r\n" + b"+QUEUED\r\n" * 3 + exec_reply)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await read.transaction(made)


async def test_a_loading_redis_is_an_outage_and_an_empty_chain_has_no_head() -> None:
    with pytest.raises(BusyLoadingError):
        await replies(b"-LOADING Redis is loading the dataset in memory\r\n*0\r\n").head()
    assert await replies(b"+OK\r\n*0\r\n").head() is None
    with pytest.raises(ExecAbortError):
        await replies(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n-EXECABORT Transaction discarded\r\n"
                      ).transaction(transaction(1))


async def test_a_silent_redis_times_out_as_an_outage() -> None:
    with pytest.raises(RedisTimeoutError):
        await replies(b"+OK\r\n", timeout=0.05, eof=False).head()
