"""Issue M's shortcuts on a request's path agree with the general path they replace.

* a check :data:`policy.rules.SILENT_UNLESS` skips for a tenant finds nothing there, so
  :func:`policy.rules.evaluate` over :func:`policy.rules.checks_for` gives the findings of
  every check of :data:`OBJECTIONS` and :data:`ESCALATIONS` asked in order;
* :func:`policy.rules.lifetime.limits` over its ranked limits equals the walk over the
  policy's ``ttl.limits`` it replaced;
* :func:`policy.verdicts.summarize`, handing out kept summaries, equals one built afresh;
* :func:`policy.rules.catalog.resolve`, claim by claim from what it remembers, equals the
  general resolution, and :func:`policy.handlers.request.with_resources` pydantic's copy.

Tenant settings, requests and holdings are drawn (hypothesis), policies parsed from text.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.handlers.request import rate_window, with_resources
from policy.ledger import Ledger
from policy.rules import (
    ESCALATIONS,
    OBJECTIONS,
    SILENT_UNLESS,
    Finding,
    RequestContext,
    checks_for,
    evaluate,
    lifetime,
)
from policy.rules.base import per_policy, top_sensitivity
from policy.rules.catalog import _merged, resolve
from policy.verdicts import summarize
from schemas.decisions import StateSummary
from schemas.events import RequestCreated
from schemas.policy import SENSITIVITY_RANK, CatalogPolicy, TenantPolicy, parse_policy
from schemas.state import Grant, SubjectState
from tests.factories import at, event, raw_request

LEVELS = ("low", "medium", "high", "critical")
ENVS = ("prod", "research", "staging", "Prod")
KINDS = ("human", "workload", "agent")


def toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


@st.composite
def tenants(draw: st.DrawFn) -> TenantPolicy:
    """A tenant with every setting a skipped check's test reads drawn either way."""
    per_request, active = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    lines = [
        'version = "t"', "[defaults.identity]",
        f"require_attestation = {toml_list(draw(st.sets(st.sampled_from(KINDS))))}",
        f"require_owner = {toml_list(draw(st.sets(st.sampled_from(KINDS))))}",
        "[defaults.catalog]",
        f'unknown = "{draw(st.sampled_from(["claim", "escalate", "deny"]))}"',
        f'unknown_from = "{draw(st.sampled_from(LEVELS))}"',
        "[defaults.caps]", f"max_active_resources = {active}",
        f"max_resources_per_request = {per_request}",
        f'strategy = "{draw(st.sampled_from(["revoke_oldest", "deny_new"]))}"',
        "[defaults.justification]",
        f'reason_from = "{draw(st.sampled_from((*LEVELS, "never")))}"',
        f'ticket_from = "{draw(st.sampled_from((*LEVELS, "never")))}"',
        "[defaults.ttl]", f'over_max = "{draw(st.sampled_from(["clamp", "deny"]))}"',
        f"max_total_s = {{ critical = {draw(st.sampled_from([600, 7200]))} }}",
        "[defaults.step_up]",
        f'from_sensitivity = "{draw(st.sampled_from((*LEVELS, "never")))}"',
        "[defaults.baseline]",
        f'novel_workload = "{draw(st.sampled_from(["escalate", "off"]))}"',
    ]
    for number in range(draw(st.integers(0, 2))):
        lines += ["[[defaults.ttl.limits]]", f"default_s = {60 * (number + 1)}",
                  f"max_s = {600 * (number + 1)}"]
        if draw(st.booleans()):
            lines.append(f'env = "{draw(st.sampled_from(ENVS[:3]))}"')
        if draw(st.booleans()):
            lines.append(f'sensitivity_from = "{draw(st.sampled_from(LEVELS))}"')
    if draw(st.booleans()):
        lines += ["[[defaults.exclusive]]", 'name = "pr"', 'envs = ["prod", "research"]',
                  f'strategy = "{draw(st.sampled_from(["revoke_older", "deny_new"]))}"']
    else:
        lines.append("defaults.exclusive = []")
    for _ in range(draw(st.integers(0, 2))):
        lines += ["[[defaults.windows]]", 'days = ["sat"]',
                  f'outside = "{draw(st.sampled_from(["escalate", "deny"]))}"',
                  f'sensitivity_from = "{draw(st.sampled_from(LEVELS))}"']
    # Lines above may name a section twice only as arrays of tables; order them so the
    # plain keys of defaults.exclusive come before any table.
    plain = [line for line in lines if line.startswith("defaults.")]
    rest = [line for line in lines if not line.startswith("defaults.")]
    text = "\n".join([rest[0], *plain, *rest[1:]]) + "\n"
    return parse_policy(text).policy.defaults


@st.composite
def requests(draw: st.DrawFn) -> RequestCreated:
    resources = draw(st.lists(st.fixed_dictionaries({
        "id": st.sampled_from(["a", "b", "c", "d"]), "env": st.sampled_from(ENVS),
        "sensitivity": st.sampled_from(LEVELS)}), min_size=1, max_size=5))
    subject: dict[str, Any] = {"id": "alice", "kind": draw(st.sampled_from(KINDS)),
                               "attested": draw(st.booleans())}
    if draw(st.booleans()):
        subject["owner"] = "team"
    extra: dict[str, Any] = {"break_glass": draw(st.booleans()),
                             "reason": draw(st.sampled_from(["", "why"])),
                             "ticket": draw(st.sampled_from([None, "OPS-1", "x"]))}
    ttl = draw(st.sampled_from([None, 30, 5000, 40_000]))
    if ttl is not None:
        extra["ttl_s"] = ttl
    raw = raw_request("r-9", resources, t=draw(st.integers(0, 7 * 86400)), **extra)
    made = event(raw | {"subject": subject})
    assert isinstance(made, RequestCreated)
    return made


@st.composite
def holdings(draw: st.DrawFn) -> SubjectState:
    grants = tuple(
        Grant(f"g-{number}", event(raw_request(f"g-{number}", [(name, env)])).resources,
              at(0), at(10 ** 7))
        for number, (name, env) in enumerate(draw(st.lists(st.tuples(
            st.sampled_from(["a", "b", "e"]), st.sampled_from(ENVS[:3])), max_size=3))))
    return SubjectState(grants=grants, seen=tuple(draw(st.sets(st.sampled_from(
        ["prod/low", "staging/high"])))))


def context(state: SubjectState, request: RequestCreated, tenant: TenantPolicy
            ) -> RequestContext:
    """As the request handler builds it (effective resources, the rate window)."""
    resolved = resolve(request.resources, tenant.catalog)
    if resolved.resources is not request.resources:
        request = request.model_copy(update={"resources": resolved.resources})
    ledger = Ledger(state, request, request.at)
    ctx = RequestContext(ledger, request, tenant, rate_window(ledger, tenant), ())
    ctx.mismatches, ctx.unknown = resolved.mismatches, resolved.unknown
    return ctx


def every_check(ctx: RequestContext) -> list[Finding]:
    """:func:`policy.rules.evaluate` as it was: every check asked, none skipped."""
    found = evaluate(ctx)  # fills in what the checks read; its findings checked below
    general: list[Finding] = []
    for check in OBJECTIONS:
        general += check(ctx)
    if general:
        return general
    if ctx.event.break_glass:
        return found  # the ration only: no escalation is asked of break-glass
    for check in ESCALATIONS:
        general += check(ctx)
    return general


common = settings(max_examples=300, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])


@common
@given(tenants(), requests(), holdings())
def test_skipped_checks_find_nothing_and_evaluate_agrees(
        tenant: TenantPolicy, request: RequestCreated, state: SubjectState) -> None:
    ctx = context(state, request, tenant)
    found = evaluate(ctx)
    for check, fires in SILENT_UNLESS:
        if not fires(tenant):
            assert check(ctx) == (), check.__name__
    assert found == every_check(ctx)


def test_every_skippable_check_is_asked_somewhere() -> None:
    asked = {*OBJECTIONS, *ESCALATIONS}
    assert all(check in asked for check, _ in SILENT_UNLESS)
    assert len({check for check, _ in SILENT_UNLESS}) == len(SILENT_UNLESS)


def test_the_packaged_tenant_skips_what_it_cannot_fire() -> None:
    from importlib import resources
    tenant = parse_policy(resources.files("policy").joinpath("default.toml").read_text()
                          ).policy.defaults
    objections, escalations = checks_for(tenant)
    assert checks_for(tenant) is checks_for(tenant), "worked out once per tenant policy"
    assert len(objections) + len(escalations) == len(OBJECTIONS) + len(ESCALATIONS) - 6


def limits_walk(request: RequestCreated, tenant: TenantPolicy) -> tuple[int, int]:
    """``lifetime.limits`` before issue M: every limit against every resource."""
    default_s, max_s = tenant.ttl.default_s, tenant.ttl.max_s
    for limit in tenant.ttl.limits:
        for resource in request.resources:
            if (limit.env is None or limit.env == resource.env) and (
                    limit.sensitivity_from is None
                    or SENSITIVITY_RANK[resource.sensitivity]
                    >= SENSITIVITY_RANK[limit.sensitivity_from]):
                default_s, max_s = min(default_s, limit.default_s), min(max_s, limit.max_s)
    max_s = min(max_s, tenant.ttl.total_s(top_sensitivity(request.resources)))
    return (request.ttl_s if request.ttl_s is not None else default_s), max_s


@common
@given(tenants(), requests())
def test_ranked_limits_equal_the_walk(tenant: TenantPolicy, request: RequestCreated) -> None:
    assert lifetime.limits(request, tenant) == limits_walk(request, tenant)


@common
@given(holdings(), holdings())
def test_kept_summaries_equal_fresh_ones(first: SubjectState, second: SubjectState) -> None:
    for grants in (first.grants, second.grants, first.grants + second.grants):
        envs = tuple(sorted({r.env for grant in grants for r in grant.resources}))
        fresh = StateSummary(len(grants), len({r.id for g in grants for r in g.resources}),
                             envs)
        assert summarize(grants) == fresh


def test_per_policy_answers_by_identity_not_equality() -> None:
    built: list[object] = []

    @per_policy
    def names(section: TenantPolicy) -> int:
        built.append(section)
        return len(built)

    one, copy = TenantPolicy(), TenantPolicy()
    assert one == copy
    assert (names(one), names(one), names(copy)) == (1, 1, 2)


@st.composite
def catalogs(draw: st.DrawFn) -> CatalogPolicy:
    lines = ['version = "t"', "[defaults.catalog]",
             f'unknown = "{draw(st.sampled_from(["claim", "escalate", "deny"]))}"',
             f'unknown_from = "{draw(st.sampled_from(LEVELS))}"']
    for _ in range(draw(st.integers(0, 3))):
        lines.append("[[defaults.catalog.resources]]")
        if draw(st.booleans()):
            lines.append(f'id = "{draw(st.sampled_from(["a", "B", "c"]))}"')
        else:
            lines.append(f'glob = "{draw(st.sampled_from(["*", "[ab]", "d*"]))}"')
        if draw(st.booleans()):
            lines.append(f'env = "{draw(st.sampled_from(ENVS[:3]))}"')
        if draw(st.booleans()):
            lines.append(f'sensitivity = "{draw(st.sampled_from(LEVELS))}"')
        if draw(st.booleans()):
            lines.append(f"roles = {toml_list(draw(st.lists(st.sampled_from(['r', 'w']))))}")
    return parse_policy("\n".join(lines) + "\n").policy.defaults.catalog


claims = st.lists(st.fixed_dictionaries({
    "id": st.sampled_from(["a", "b", "c", "d", "A"]), "env": st.sampled_from(ENVS),
    "sensitivity": st.sampled_from(LEVELS),
    "roles": st.lists(st.sampled_from(["r", "W", " w"]), max_size=2)}), min_size=1, max_size=4)


@common
@given(catalogs(), claims, claims)
def test_remembered_resolution_equals_the_general_one(
        catalog: CatalogPolicy, first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    for listed in (first, second, first):  # the second time round, from what it remembers
        request = event(raw_request("r-1", listed))
        assert isinstance(request, RequestCreated)
        resolved, general = resolve(request.resources, catalog), _merged(request.resources,
                                                                          catalog)
        assert resolved == general
        distinct = len({item["id"] for item in listed}) == len(listed)
        if distinct and general.resources == request.resources:
            assert resolved.resources is request.resources, "nothing changed: same tuple"


@common
@given(requests(), claims)
def test_with_resources_is_model_copy(request: RequestCreated,
                                      listed: list[dict[str, Any]]) -> None:
    other = event(raw_request("r-2", listed)).resources  # type: ignore[union-attr]
    copied, reference = (with_resources(request, other),
                         request.model_copy(update={"resources": other}))
    assert copied == reference
    assert copied.__pydantic_fields_set__ == reference.__pydantic_fields_set__
    assert copied.model_dump_json() == reference.model_dump_json()
