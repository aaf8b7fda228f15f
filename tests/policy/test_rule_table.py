"""The README's rule table says what RULES holds: every id once, none missing, none extra."""

from __future__ import annotations

import re

from policy import RULES
from tests.paths import REPO

RULE_ID = re.compile(r"`([a-z]+(?:-[a-z]+)+)`")  # rule ids are kebab-case; settings are not


def _table() -> dict[str, list[str]]:
    """Area -> rule ids, from the README's ``| area | rule ids |`` table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("| area | rule ids |")
    rows: dict[str, list[str]] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        area, ids = (cell.strip() for cell in line.strip("|").split("|", 1))
        rows[area] = RULE_ID.findall(ids)
    return rows


def test_readme_rule_table_lists_every_rule_once() -> None:
    listed = [rule_id for ids in _table().values() for rule_id in ids]
    duplicated = sorted({rule_id for rule_id in listed if listed.count(rule_id) > 1})
    assert not duplicated, f"README lists these rules twice: {duplicated}"
    known = {rule.id for rule in RULES}
    assert not known - set(listed), f"README's rule table lacks {sorted(known - set(listed))}"
    assert not set(listed) - known, f"README names unknown rules {sorted(set(listed) - known)}"
