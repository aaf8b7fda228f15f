"""Kafka's default partitioner: which partition a keyed record goes to.

The contract has every producer key records by subject id with Kafka's default partitioner
(murmur2), so a subject's events, its state and its expiry ticks meet on one partition. The
expiry timer needs that choice to know whether this worker owns a subject; here it is in
plain Python (as in Kafka's Java client, ``Utils.murmur2``) so the pure layer does not
import the Kafka client for one function. tests/streams/engine/test_partitioner.py checks it
against aiokafka's own over many random keys.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["murmur2", "partition_of"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The 32-bit MurmurHash2 of ``data`` as Kafka computes it (unsigned)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


@lru_cache(maxsize=65_536)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives ``key``, as the contract
    requires of every producer.

    Remembered for the most recent keys (issue M): the pure-Python murmur2 cost about
    1.7 µs for a short subject id, the cache's lookup about a tenth of that, and a subject
    comes back to the planner (repartition check) and the expiry timer again and again.
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions
