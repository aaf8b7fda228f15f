"""A subject state the worker may store is a changelog record its producer sends.

The stored-value limit (``JITWATCH_MAX_STORED_BYTES``, default 1,000,000) bounds the value
only; the changelog record also carries the key (a subject's canonical id: 512 characters,
which NFKC may lengthen) and the record framing. faust's producer refuses records over its
``producer_max_request_size`` (faust's default 1,000,000), and a refused changelog record
fails its whole batch, which is then never acknowledged: the partition would stop.
"""

from __future__ import annotations

from importlib import resources

import pytest
from aiokafka import AIOKafkaProducer

from schemas.canonical import canonical_id
from schemas.policy import parse_policy
from streams.engine.codec import subject_key
from streams.settings import load_settings
from streams.worker.app import TABLE_NAME, build_app

# U+FDFA is the character NFKC lengthens most (18 characters, 33 bytes of UTF-8).
LONGEST_KEY = subject_key("\ufdfa" * 512)


@pytest.mark.parametrize("max_stored_bytes", [64 * 1024, 1_000_000, 8 * 1024 * 1024])
async def test_the_largest_stored_value_with_the_longest_key_is_sent(
        max_stored_bytes: int) -> None:
    settings = load_settings(max_stored_bytes=max_stored_bytes)
    policy = parse_policy(resources.files("policy").joinpath("default.toml").read_text())
    app = build_app(settings.kafka, settings.topics, settings.worker, policy)
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1",
                                max_request_size=app.conf.producer_max_request_size)
    try:
        # What aiokafka's send checks before a record joins a batch (raises when too big).
        producer._serialize(LONGEST_KEY, b"x" * max_stored_bytes,
                            [("jitwatch", b"1")])
    finally:
        await producer.stop()
    # A changelog topic the worker creates takes it too (an existing one keeps its own).
    changelog = app.tables[TABLE_NAME].changelog_topic
    assert int(changelog.config["max.message.bytes"]) == app.conf.producer_max_request_size
    assert len(canonical_id("\ufdfa" * 512).encode()) == len(LONGEST_KEY) > 2048
