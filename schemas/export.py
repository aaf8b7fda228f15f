"""Export JSON Schema files from the pydantic models (the models are the source of truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.decisions import Decision
from schemas.events import INPUT_EVENT
from schemas.notices import Notice
from schemas.policy import Policy
from schemas.state import StoredSubject

__all__ = ["SCHEMA_DIR", "render_schemas", "stale_schemas", "write_schemas"]

SCHEMA_DIR = Path(__file__).parent / "json"
"""Where the exported files live inside the package."""


def _schema(adapter: TypeAdapter[Any], title: str, mode: str) -> dict[str, Any]:
    schema = adapter.json_schema(mode=mode, by_alias=True)  # type: ignore[arg-type]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    schema["title"] = title
    return schema


def render_schemas() -> dict[str, str]:
    """File name → JSON text of every exported schema, deterministic byte for byte."""
    documents = {
        "input-event.schema.json": _schema(INPUT_EVENT, "jitwatch input event", "validation"),
        "decision.schema.json": _schema(TypeAdapter(Decision), "jit.decision/v1", "serialization"),
        "notice.schema.json": _schema(TypeAdapter(Notice), "jit.notice/v1", "serialization"),
        "stored-subject.schema.json": _schema(
            TypeAdapter(StoredSubject), "jitwatch stored subject state", "validation"
        ),
        "policy.schema.json": _schema(TypeAdapter(Policy), "jitwatch policy", "validation"),
    }
    return {
        name: json.dumps(document, indent=2, sort_keys=True) + "\n"
        for name, document in documents.items()
    }


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files missing or different from what the models export."""
    return [
        name
        for name, text in render_schemas().items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
