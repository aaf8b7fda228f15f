"""Issue G's layout rules that no linter checks: one concern per file, so files stay short."""

from __future__ import annotations

import ast

from tests.paths import REPO

LIMIT = 400
PACKAGES = ("policy", "schemas", "streams")


def test_no_module_over_400_lines_unless_it_says_why() -> None:
    long = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") <= LIMIT:
                continue
            opening = ast.get_docstring(ast.parse(text)) or ""
            if "over 400 lines" not in opening:
                long.append(f"{path.relative_to(REPO)} ({text.count(chr(10))} lines)")
    assert not long, ("split these, or say in the opening docstring why the module is "
                      f"over 400 lines: {long}")
