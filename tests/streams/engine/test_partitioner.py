"""The pure partitioner gives every key the partition Kafka's default partitioner gives it."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as kafka_murmur2

from streams.engine.partitioner import murmur2, partition_of


def test_partition_of_matches_kafkas_default_partitioner() -> None:
    for key in (b"alice", b"spiffe://acme.example/ns/ci/sa/deployer", b"x" * 300):
        assert partition_of(key, 8) == DefaultPartitioner()(key, list(range(8)), [])


def test_murmur2_equals_aiokafkas_over_many_random_keys() -> None:
    rng = random.Random(20261123)
    for _ in range(20_000):
        key = rng.randbytes(rng.randrange(0, 64))
        assert murmur2(key) == kafka_murmur2(key), key


def test_partition_of_is_the_default_partitioners_choice_for_random_keys() -> None:
    rng = random.Random(7)
    for partitions in (1, 3, 8, 12, 100):
        every = list(range(partitions))
        for _ in range(2_000):
            key = rng.randbytes(rng.randrange(1, 48))
            assert partition_of(key, partitions) == DefaultPartitioner()(key, every, []), key
