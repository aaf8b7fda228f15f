"""Send a batch's records through the worker's producer and await every acknowledgement."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

__all__ = ["Outgoing", "send_all"]

Outgoing = tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]
"""(topic, key, value, partition or None for the key's, headers or None)."""


async def send_all(producer: Any, records: Sequence[Outgoing]) -> list[Any]:
    """Send every record, then await all acknowledgements; returns their metadata.

    Every record is handed to the producer before any acknowledgement is awaited, so a
    batch's records go out together in as few requests as the producer can make.
    """
    futures = [
        await producer.send(topic, key, value, partition=partition, timestamp=None,
                            headers=headers or None)
        for topic, key, value, partition, headers in records
    ]
    return list(await asyncio.gather(*futures))
