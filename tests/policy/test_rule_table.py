"""The README's rule table says what RULES holds: every id once, in the area module that
defines it, none missing, none extra."""

from __future__ import annotations

import re

from policy import RULES, Rule
from policy.rules import AREAS
from tests.paths import REPO

RULE_ID = re.compile(r"`([a-z]+(?:-[a-z]+)+)`")  # rule ids are kebab-case; settings are not
AREA = re.compile(r"`([a-z_]+)`")


def _table() -> dict[str, list[str]]:
    """Area module -> rule ids, from the README's ``| area ... | rule ids |`` table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = re.search(r"^\| area[^\n]*\| rule ids \|$", text, re.MULTILINE)
    assert start is not None, "README.md has no '| area ... | rule ids |' table"
    rows: dict[str, list[str]] = {}
    for line in text[start.start():].splitlines()[2:]:
        if not line.startswith("|"):
            break
        area, ids = (cell.strip() for cell in line.strip("|").split("|", 1))
        named = AREA.match(area)
        assert named is not None, f"README rule table: {area!r} does not name an area module"
        rows[named.group(1)] = RULE_ID.findall(ids)
    return rows


def _defined_in() -> dict[str, str]:
    """Rule id -> the area module (policy/rules/<area>.py) that defines it."""
    return {value.id: module.__name__.rsplit(".", 1)[1]
            for module in AREAS for value in vars(module).values() if isinstance(value, Rule)}


def test_readme_rule_table_lists_every_rule_once_under_its_area() -> None:
    table = _table()
    listed = [rule_id for ids in table.values() for rule_id in ids]
    duplicated = sorted({rule_id for rule_id in listed if listed.count(rule_id) > 1})
    assert not duplicated, f"README lists these rules twice: {duplicated}"
    known = {rule.id for rule in RULES}
    assert not known - set(listed), f"README's rule table lacks {sorted(known - set(listed))}"
    assert not set(listed) - known, f"README names unknown rules {sorted(set(listed) - known)}"
    homes = _defined_in()
    misplaced = [f"{rule_id} (README: {area}, code: {homes[rule_id]})"
                 for area, ids in table.items() for rule_id in ids if homes[rule_id] != area]
    assert not misplaced, f"README's rule table puts rules in the wrong area: {misplaced}"
