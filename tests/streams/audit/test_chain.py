"""The pure audit chain rules: every tamper case is found and named, without Redis."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policy.signatures import fingerprint
from streams.audit.chain import (
    GENESIS,
    ChainEntry,
    ChainVerifier,
    Checkpoint,
    Head,
    checkpoint_digest,
    entry_digest,
    entry_hash,
    entry_hash_prefix,
)

KEY = Ed25519PrivateKey.generate()


def _decision(n: int) -> bytes:
    return orjson.dumps({"decision_id": f"d-{n:032x}", "action": "approve", "n": n})


def chain(count: int, partition: int = 0, offsets: list[int] | None = None) -> list[ChainEntry]:
    entries: list[ChainEntry] = []
    head: Head | None = None
    for n, offset in enumerate(offsets or list(range(count))):
        entry = ChainEntry.after(head, partition, offset, b"alice", _decision(n))
        entries.append(entry)
        head = entry.as_head
    return entries


def sign(entries: list[ChainEntry], at: list[int], key: Ed25519PrivateKey = KEY,
         partition: int = 0) -> list[tuple[bytes, bytes]]:
    signed: list[tuple[bytes, bytes]] = []
    prev = GENESIS
    for seq in at:
        payload = Checkpoint(partition, entries[seq].as_head, prev, "2026-11-23T10:00:00Z",
                             fingerprint(key.public_key())).payload()
        signed.append((payload, key.sign(payload).hex().encode()))
        prev = checkpoint_digest(payload)
    return signed


def verify(entries: list[ChainEntry], checkpoints: list[tuple[bytes, bytes]] | None = None,
           public: Ed25519PrivateKey = KEY) -> ChainVerifier:
    verifier = ChainVerifier(0, public.public_key(), checkpoints or [])
    verifier.feed_all((e.stream_id.encode(), e.to_fields()) for e in entries)
    verifier.finish()
    return verifier


def test_an_intact_chain_with_checkpoints_verifies() -> None:
    entries = chain(10)
    verifier = verify(entries, sign(entries, [3, 9]))
    assert verifier.problem is None
    assert verifier.entries == 10
    assert verifier.signed_through == 9
    assert verifier.head == entries[-1].as_head


def test_the_hash_covers_every_part() -> None:
    base = (0, 1, 2, b"k", b"d-1", b"{}", GENESIS)
    digests = {entry_hash(*base)}
    for index in range(len(base)):
        changed = list(base)
        value = changed[index]
        changed[index] = value + 1 if isinstance(value, int) else value + b"x" \
            if isinstance(value, bytes) else "1" + value[1:]
        digests.add(entry_hash(*changed))  # type: ignore[arg-type]
    assert len(digests) == len(base) + 1
    # Length prefixes: moving a byte from one part to the next changes the hash.
    assert entry_hash(0, 1, 2, b"ab", b"c", b"{}", GENESIS) != \
        entry_hash(0, 1, 2, b"a", b"bc", b"{}", GENESIS)


def test_the_hash_is_the_contracts_encoding() -> None:
    """schemas/CONTRACT.md, "hash", spelled out: chains written by any version verify."""
    parts = (b"3", b"41", b"1234", b"alice", b"d-1", b'{"n": 1}', GENESIS.encode())
    expected = hashlib.sha256(b"jitwatch.audit.entry/v1" + b"".join(
        len(part).to_bytes(8, "big") + part for part in parts)).hexdigest()
    assert entry_hash(3, 41, 1234, b"alice", b"d-1", b'{"n": 1}', GENESIS) == expected
    # The sink's form of the same hash (partition prefix built once per transaction).
    assert entry_digest(entry_hash_prefix(3), b"41", b"1234", b"alice", b"d-1", b'{"n": 1}',
                        GENESIS.encode()) == expected


def test_a_flipped_byte_is_named() -> None:
    entries = chain(6)
    flipped = bytearray(entries[3].decision)
    flipped[5] ^= 0x01
    entries[3] = replace(entries[3], decision=bytes(flipped))
    problem = verify(entries).problem
    assert problem is not None
    assert (problem.verdict, problem.seq, problem.offset) == ("tampered", 3, 3)
    assert "hash does not match" in problem.what


def test_a_deleted_middle_entry_is_named() -> None:
    entries = chain(6)
    del entries[2]
    problem = verify(entries).problem
    assert problem is not None
    assert (problem.seq, problem.offset) == (3, 3)
    assert "expected seq 2" in problem.what


def test_a_reordering_is_named() -> None:
    entries = chain(6)
    # Swap the contents of two entries; stream ids stay increasing, as Redis forces them.
    a, b = entries[2], entries[3]
    entries[2] = replace(b, stream_id=a.stream_id)
    entries[3] = replace(a, stream_id=b.stream_id)
    problem = verify(entries).problem
    assert problem is not None
    assert problem.seq == 3


def test_an_insertion_is_named() -> None:
    entries = chain(6)
    forged = ChainEntry.after(entries[1].as_head, 0, 3, b"mallory", _decision(99))
    entries.insert(2, forged)
    problem = verify(entries).problem
    assert problem is not None
    # Its offset 3 skips offset 2: the first missing offset is named.
    assert (problem.seq, problem.offset) == (2, 2)


def test_a_rewritten_chain_is_caught_by_the_checkpoint() -> None:
    entries = chain(6)
    signed = sign(entries, [4])
    # The attacker recomputes every hash after changing entry 2: links are fine again.
    rewritten = entries[:2]
    for entry in entries[2:]:
        decision = entry.decision.replace(b"approve", b"deny") if entry.seq == 2 \
            else entry.decision
        rewritten.append(ChainEntry.after(rewritten[-1].as_head, 0, entry.offset, entry.key,
                                          decision))
    assert verify(rewritten).problem is None  # without checkpoints it cannot be told
    problem = verify(rewritten, signed).problem
    assert problem is not None
    assert problem.seq == 4
    assert "notary signed" in problem.what


def test_a_truncated_tail_behind_a_checkpoint_is_named() -> None:
    entries = chain(8)
    problem = verify(entries[:5], sign(entries, [6])).problem
    assert problem is not None
    assert problem.seq == 5
    assert "truncated" in problem.what


def test_a_truncated_unsigned_tail_is_not_visible_without_kafka() -> None:
    entries = chain(8)
    verifier = verify(entries[:7], sign(entries, [5]))
    assert verifier.problem is None
    assert verifier.signed_through == 5


def test_a_bad_signature_is_named() -> None:
    entries = chain(4)
    signed = sign(entries, [1, 3], key=Ed25519PrivateKey.generate())
    problem = verify(entries, signed).problem
    assert problem is not None
    assert "not in the keyring" in problem.what
    assert problem.seq == 1


def test_a_signature_by_another_key_under_the_notarys_key_id_is_invalid() -> None:
    entries = chain(2)
    payload, _ = sign(entries, [1])[0]
    forged = Ed25519PrivateKey.generate().sign(payload).hex().encode()
    problem = verify(entries, [(payload, forged)]).problem
    assert problem is not None
    assert "signature invalid" in problem.what


@pytest.mark.parametrize("stored", [b"", b"zz", b"abc", "é".encode(), b"00" * 64])
def test_a_signature_that_is_not_the_notarys_hex_is_invalid(stored: bytes) -> None:
    """Checkpoints carry their signature as hex: odd, non-hex, non-ASCII or wrong bytes are
    refused like a wrong key, never an exception."""
    entries = chain(2)
    payload, _ = sign(entries, [1])[0]
    problem = verify(entries, [(payload, stored)]).problem
    assert problem is not None
    assert "signature invalid" in problem.what


def test_a_removed_checkpoint_breaks_the_links() -> None:
    entries = chain(6)
    signed = sign(entries, [1, 3, 5])
    problem = verify(entries, [signed[0], signed[2]]).problem
    assert problem is not None
    assert "does not link" in problem.what


def test_a_checkpoint_of_another_partition_is_refused() -> None:
    entries = chain(3, partition=1)
    problem = verify(chain(3), sign(entries, [2], partition=1)).problem
    assert problem is not None
    assert "partition 1" in problem.what


def test_missing_fields_are_named() -> None:
    entries = chain(2)
    fields = entries[1].to_fields()
    del fields[b"prev"]
    verifier = ChainVerifier(0, None)
    verifier.feed(entries[0].stream_id, entries[0].to_fields())
    problem = verifier.feed(entries[1].stream_id, fields)
    assert problem is not None
    assert "prev" in problem.what


def test_a_moved_entry_id_is_named() -> None:
    entries = chain(3)
    entries[1] = replace(entries[1], stream_id="0-99")
    problem = verify(entries).problem
    assert problem is not None
    assert "stream id 0-99" in problem.what


@pytest.mark.parametrize("offsets", [[0, 1, 2], [5, 6, 7, 8]])
def test_contiguous_offsets_from_any_first_one_verify(offsets: list[int]) -> None:
    assert verify(chain(len(offsets), offsets=offsets)).problem is None


@pytest.mark.parametrize(("offsets", "seq", "missing"), [
    ([0, 1, 3, 4], 2, 2),             # an offset skipped
    ([0, 1, 2, 1_000_000], 3, 3),     # an entry invented far ahead
    ([5, 9, 10, 200], 1, 6),
])
def test_a_gap_in_the_offsets_is_tampering_and_names_the_first_missing_offset(
        offsets: list[int], seq: int, missing: int) -> None:
    """The decisions topic is written without transactions: its offsets have no gaps."""
    problem = verify(chain(len(offsets), offsets=offsets)).problem
    assert problem is not None
    assert (problem.verdict, problem.seq, problem.offset) == ("tampered", seq, missing)
    assert f"offset {missing} is missing" in problem.what


def test_resume_after_checks_only_what_follows() -> None:
    entries = chain(6)
    verifier = ChainVerifier(0, None)
    verifier.resume_after(entries[2].as_head)
    assert verifier.feed_all((e.stream_id.encode(), e.to_fields()) for e in entries[3:]) is None
    assert verifier.head == entries[-1].as_head
