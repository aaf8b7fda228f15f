"""The JSON Schema files shipped in schemas/json must match the models exactly."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.export import SCHEMA_DIR, render_schemas, stale_schemas, write_schemas


def test_checked_in_schema_files_match_the_models() -> None:
    assert stale_schemas() == [], "run `jitwatch schemas export` and commit schemas/json"


def test_drift_is_detected(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    victim = tmp_path / "decision.schema.json"
    victim.write_text(victim.read_text().replace('"action"', '"verdict"'))
    (tmp_path / "policy.schema.json").unlink()
    assert sorted(stale_schemas(tmp_path)) == ["decision.schema.json", "policy.schema.json"]


def test_schemas_are_valid_json_with_titles() -> None:
    for name, text in render_schemas().items():
        document = json.loads(text)
        assert document["title"], name
        assert (SCHEMA_DIR / name).is_file()


def test_input_schema_is_a_union_on_type() -> None:
    document = json.loads(render_schemas()["input-event.schema.json"])
    assert document["discriminator"]["propertyName"] == "type"
    assert "request.created" in document["discriminator"]["mapping"]
