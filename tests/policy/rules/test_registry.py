"""The rule registry (policy/rules/__init__.py): every rule once, in one area, all reachable."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import policy.rules
from policy import RULES, Finding, Rule, combine
from policy.rules import ESCALATIONS, GATES, OBJECTIONS

NOT_AREAS = {"base"}


def area_modules() -> dict[str, ModuleType]:
    """Every module under policy/rules/ that holds rules, found on disk (not from AREAS)."""
    names = [info.name for info in pkgutil.iter_modules(policy.rules.__path__)]
    return {name: importlib.import_module(f"policy.rules.{name}")
            for name in names if name not in NOT_AREAS}


def defined_in(module: ModuleType) -> list[Rule]:
    return [value for value in vars(module).values() if isinstance(value, Rule)]


def test_rule_ids_are_unique() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    assert len(set(RULES)) == len(RULES)


def test_each_rule_lives_in_exactly_one_area_module() -> None:
    homes: dict[str, list[str]] = {}
    for name, module in area_modules().items():
        for rule in defined_in(module):
            homes.setdefault(rule.id, []).append(name)
    assert {rule.id for rule in RULES} == set(homes), "a rule outside RULES or outside areas"
    assert {rule_id: names for rule_id, names in homes.items() if len(names) != 1} == {}


def test_every_area_module_is_reachable_from_rules() -> None:
    reached = {rule.id for rule in RULES}
    for name, module in area_modules().items():
        rules = defined_in(module)
        assert rules, f"policy/rules/{name}.py defines no rule"
        assert all(rule.id in reached for rule in rules), name
    assert {module.__name__ for module in policy.rules.AREAS} == {
        module.__name__ for module in area_modules().values()}


def test_every_check_belongs_to_an_area_or_the_registry() -> None:
    areas = {module.__name__ for module in area_modules().values()} | {"policy.rules"}
    for check in (*GATES, *OBJECTIONS, *ESCALATIONS):
        assert check.__module__ in areas, check


DENY_A = Finding("deny", RULES[4], "deny a")
DENY_B = Finding("deny", RULES[5], "deny b")
ESCALATE_A = Finding("escalate", RULES[16], "escalate a")
ESCALATE_B = Finding("escalate", RULES[17], "escalate b")


def test_combine_deny_beats_escalate_beats_approve() -> None:
    assert combine([]) is None, "nothing found: approve"
    assert combine([ESCALATE_A]) is ESCALATE_A
    assert combine([ESCALATE_A, DENY_B]) is DENY_B, "a deny wins over an earlier escalation"
    assert combine([DENY_A]) is DENY_A


def test_combine_names_the_first_and_joins_the_rest_in_order() -> None:
    both = combine([ESCALATE_A, DENY_A, ESCALATE_B, DENY_B])
    assert both == Finding("deny", DENY_A.rule, "deny a; also: deny b")
    escalations = combine([ESCALATE_B, ESCALATE_A])
    assert escalations == Finding("escalate", ESCALATE_B.rule, "escalate b; also: escalate a")


def test_combine_keeps_the_first_findings_lock() -> None:
    locking = Finding("deny", RULES[3], "too often", lock_s=60, lock_reason="locked")
    assert combine([locking, DENY_A]) == Finding("deny", RULES[3], "too often; also: deny a",
                                                 60, "locked")
