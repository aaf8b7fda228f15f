"""The tamper-evident audit trail: hash-chained decisions in Redis, signed checkpoints,
verification, query and export (issue D).

- :mod:`streams.audit.chain`: the pure rules (encoding, hashes, checkpoints, verification),
- :mod:`streams.audit.sink`: the sink process (Kafka ``jit.decisions`` -> Redis chains),
  appending through :mod:`streams.audit.appender` (transactions planned in
  :mod:`streams.audit.transactions`, sent as :mod:`streams.audit.resp`, their replies read
  by :mod:`streams.audit.replies`),
- :mod:`streams.audit.retry`: waiting out Redis outages (sink and notary),
- :mod:`streams.audit.notary`: signs chain heads; keys from files,
- :mod:`streams.audit.verify`, :mod:`streams.audit.query`: the auditors' commands.
"""

from __future__ import annotations

from streams.audit.appender import RedisAuditSink
from streams.audit.chain import AuditTamperError
from streams.audit.keys import checkpoint_key, index_key, stream_key
from streams.audit.sink import run_audit_sink
from streams.audit.transactions import AuditRecord

__all__ = [
    "AuditRecord",
    "AuditTamperError",
    "RedisAuditSink",
    "checkpoint_key",
    "index_key",
    "run_audit_sink",
    "stream_key",
]
