"""The tamper-evident audit trail: hash-chained decisions in Redis, signed checkpoints,
verification, query and export (issue D).

- :mod:`streams.audit.chain`: the pure rules (encoding, hashes, checkpoints, verification),
- :mod:`streams.audit.sink`: the sink process (Kafka ``jit.decisions`` -> Redis chains),
- :mod:`streams.audit.notary`: signs chain heads; keys from files,
- :mod:`streams.audit.verify`, :mod:`streams.audit.query`: the auditors' commands.
"""

from __future__ import annotations

from streams.audit.chain import AuditTamperError
from streams.audit.keys import checkpoint_key, index_key, stream_key
from streams.audit.sink import AuditRecord, RedisAuditSink, run_audit_sink

__all__ = [
    "AuditRecord",
    "AuditTamperError",
    "RedisAuditSink",
    "checkpoint_key",
    "index_key",
    "run_audit_sink",
    "stream_key",
]
