"""Property-based fuzzing of every public input (issue 12), validation-only: no Prefect run.

For each input, hypothesis generates values (mostly nonsense: NaN, inf, bools, numeric strings,
sets, bytes, objects, control characters, huge ints, deep nesting, unknown keys) and an
independent *oracle* written from the documented rules says whether the value is acceptable.
Each example must either be accepted (oracle: valid) or be refused with an error naming the
field (oracle: invalid). Counted: silent acceptances (accepted but invalid), wrong refusals
(refused but valid) and refusals that do not name the field; all three must be 0, over at
least 500 generated cases in total (``test_totals`` checks, ``-s`` prints the numbers).
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from steer_llm_sdk.config import CircuitBreakerConfig, OrchestrationConfig, RetryPolicy
from steer_llm_sdk.errors import OrchestratorError
from steer_llm_sdk.orchestration.orchestrator import BaseOrchestrator, Orchestrator
from steer_llm_sdk.validation import InputError, check_request
from steer_tools.examples import feasibility_tool
from steer_tools.registry import ToolRegistry
from steer_tools.resolve import resolve_tool

FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
COUNTS: Counter[str] = Counter()
RAN: set[str] = set()  # property tests that ran; test_totals needs all of them
REJECTIONS = (ValidationError, InputError, ValueError, TypeError, OrchestratorError)

# --- value strategies: JSON-ish values plus everything JSON cannot hold -----------------------
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(-(2**80), 2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1),
    st.text(max_size=12), st.sampled_from(["1", "0.5", "true", "", " ", "nan", "a\nb", "é"]),
    st.binary(max_size=4), st.just(object()), st.frozensets(st.integers(0, 3), max_size=2),
)
keys = st.one_of(st.text(max_size=8), st.integers(0, 3), st.sampled_from(
    ["tokens", "cost_usd", "ms", "dollars", "min_confidence", "min_valid_replicates", "k"]))
anything = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)), max_leaves=8)
ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=130)
numbers = st.one_of(
    st.integers(-5, 100), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.floats(-1, 2), st.booleans(), st.sampled_from(["1", "2.5", "three", None]))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_json(v: Any, depth: int = 0, max_depth: int = 64) -> bool:
    if depth > max_depth:
        return False
    if v is None or isinstance(v, bool | str | int):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list | tuple):
        return all(_is_json(x, depth + 1, max_depth) for x in v) and depth < max_depth
    if isinstance(v, dict):
        return depth < max_depth and all(isinstance(k, str) and _is_json(x, depth + 1, max_depth)
                                         for k, x in v.items())
    return False


def _printable_ascii_id(v: Any) -> bool:
    return isinstance(v, str) and 1 <= len(v) <= 128 and v == v.strip() and all(
        0x20 <= ord(c) <= 0x7E for c in v)


# --- oracles: the documented rules, written independently of steer_llm_sdk.validation ---------

def budget_ok(v: Any, allowed: tuple[str, ...] = ("tokens", "cost_usd", "ms")) -> bool:
    return v is None or (isinstance(v, dict) and all(
        k in allowed and _is_number(x) and x > 0 for k, x in v.items()))


def quality_ok(v: Any) -> bool:
    if not isinstance(v, dict) or not set(v) <= {"min_confidence", "min_valid_replicates"}:
        return False
    conf = v.get("min_confidence", 0.5)
    reps = v.get("min_valid_replicates", 1)
    return (_is_number(conf) and 0 <= conf <= 1 and _is_number(reps)
            and float(reps).is_integer() and 1 <= reps <= 50)


def id_ok(v: Any) -> bool:
    return v is None or _printable_ascii_id(v)


def idem_ok(v: Any) -> bool:
    return v is None or (isinstance(v, str) and bool(v.strip()) and len(v) <= 256
                         and all(c.isprintable() for c in v))


def metadata_ok(v: Any) -> bool:
    import json

    return isinstance(v, dict) and _is_json(v, max_depth=8) and len(
        json.dumps(v, ensure_ascii=False).encode()) <= 16_384


def names_ok(v: Any) -> bool:
    return isinstance(v, list | tuple) and all(
        isinstance(n, str) and n.strip() and len(n) <= 300 for n in v)


def int_in(lo: int, hi: int | None) -> Any:
    """An int (not a bool, not a float: JSON clients send 3, not 3.0) within [lo, hi]."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo and (
        hi is None or v <= hi)


def bool_ok(v: Any) -> bool:
    return isinstance(v, bool)


CONFIG_FIELDS: dict[str, tuple[Any, Any]] = {
    "budget": (st.one_of(st.dictionaries(keys, numbers, max_size=3), anything), budget_ok),
    "quality_requirements": (st.one_of(st.dictionaries(keys, numbers, max_size=2), anything),
                             quality_ok),
    "trace_id": (st.one_of(st.text(max_size=140), ascii_text, scalars), id_ok),
    "request_id": (st.one_of(st.text(max_size=140), ascii_text, scalars), id_ok),
    "idempotency_key": (st.one_of(st.text(max_size=300), scalars), idem_ok),
    "metadata": (st.one_of(st.dictionaries(keys, anything, max_size=4), anything), metadata_ok),
    "fallback_tools": (st.one_of(st.lists(st.one_of(st.text(max_size=5), scalars), max_size=3),
                                 anything), names_ok),
    "max_parallel": (numbers, int_in(1, 50)),
    "max_retries": (numbers, lambda v: v is None or int_in(0, 19)(v)),
    "timeout_ms": (numbers, lambda v: v is None or int_in(1, None)(v)),
    "streaming": (scalars, bool_ok),
    "deterministic": (scalars, bool_ok),
}


def _judge(kind: str, field: str, valid: bool, call: Any) -> None:
    """Run ``call``; count and check the outcome against the oracle."""
    COUNTS["cases"] += 1
    try:
        call()
    except REJECTIONS as exc:
        COUNTS["refused"] += 1
        assert not valid, f"{kind}: wrongly refused {field}: {exc}"
        assert field in str(exc), f"{kind}: the error does not name {field!r}: {exc}"
        return
    COUNTS["accepted"] += 1
    assert valid, f"{kind}: silently accepted an invalid {field}"


@pytest.mark.parametrize("field", sorted(CONFIG_FIELDS))
def test_orchestration_config_fields(field):
    strategy, oracle = CONFIG_FIELDS[field]

    @FAST
    @given(strategy)
    def prop(value):
        _judge("OrchestrationConfig", field, oracle(value),
               lambda: OrchestrationConfig(**{field: value}))

    prop()
    RAN.add(f"config.{field}")


TOOL = feasibility_tool()  # k defaults to 5: seeds need 5 distinct entries

OPTION_FIELDS: dict[str, tuple[Any, Any]] = {
    "k": (numbers, int_in(2, 50)),
    "epsilon": (numbers, lambda v: _is_number(v) and 0 <= v <= 1),
    "per_replicate_budget": (st.one_of(st.dictionaries(keys, numbers, max_size=2), anything),
                             lambda v: budget_ok(v, ("tokens", "cost_usd"))),
    "global_budget": (st.one_of(st.dictionaries(keys, numbers, max_size=2), anything),
                      budget_ok),
    "seeds": (st.one_of(st.lists(numbers, min_size=5, max_size=5), anything),
              lambda v: v is None or (isinstance(v, list) and len(v) == 5 and all(
                  int_in(0, 2**63 - 1)(s) for s in v) and len(set(v)) == 5)),
    "early_stop": (scalars, bool_ok),
}


@pytest.mark.parametrize("field", sorted(OPTION_FIELDS))
def test_bundle_tool_options(field):
    strategy, oracle = OPTION_FIELDS[field]

    @FAST
    @given(strategy)
    def prop(value):
        _judge("tool_options", field, oracle(value), lambda: TOOL.check_options({field: value}))

    prop()
    RAN.add(f"options.{field}")


OPTION_NAMES = sorted(TOOL.option_names) + ["fallback_tools"]


@FAST
@given(st.dictionaries(st.one_of(st.text(max_size=12), st.sampled_from(
    ["early_stp", "K", "epsilom", "seed", "kk", "budget"])), st.just(None), min_size=1,
    max_size=2))
def test_unknown_option_names_are_refused_with_a_suggestion(options):
    RAN.add("option names")
    valid = all(name in OPTION_NAMES for name in options)
    _judge("tool_options names", "tool_options", valid, lambda: TOOL.check_options(options))


@FAST
@given(st.one_of(anything, st.text(max_size=30), st.dictionaries(keys, anything, min_size=1)))
def test_requests(value):
    def oracle(v: Any) -> bool:
        if isinstance(v, str):
            return bool(v.strip())
        return isinstance(v, dict) and bool(v) and _is_json(v, max_depth=32)

    RAN.add("request")
    _judge("request", "request", oracle(value), lambda: check_request(value))


RETRY_FLOATS = ["initial_delay", "max_delay", "jitter"]


@FAST
@given(st.sampled_from(RETRY_FLOATS + ["reset_timeout_s"]), numbers)
def test_reliability_floats(field, value):
    bounds = {"initial_delay": (0, None), "max_delay": (0, None), "jitter": (0, 1),
              "reset_timeout_s": (0, None)}
    lo, hi = bounds[field]
    ok = _is_number(value) and value >= lo and (hi is None or value <= hi) and (
        field != "reset_timeout_s" or value > 0)
    RAN.add("reliability")
    model = CircuitBreakerConfig if field == "reset_timeout_s" else RetryPolicy
    _judge(model.__name__, field, ok, lambda: model(**{field: value}))


class _Reached(Exception):
    pass


@pytest.fixture
def guarded(monkeypatch):
    async def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise _Reached

    monkeypatch.setattr(BaseOrchestrator, "_execute", forbidden)
    registry = ToolRegistry()
    registry.register_tool(TOOL)
    return Orchestrator(registry=registry)


def test_orchestrator_run_checks_before_any_flow_run(guarded):
    """Through the public entry point: nothing invalid reaches ``_execute``."""

    @settings(max_examples=40, deadline=None, database=None)
    @given(st.one_of(anything, st.text(max_size=10)),
           st.one_of(st.none(), st.dictionaries(st.sampled_from(OPTION_NAMES + ["nope"]),
                                                numbers, max_size=2)))
    def prop(request, tool_options):
        COUNTS["cases"] += 1
        try:
            asyncio.run(guarded.run(request, "feasibility", tool_options))
        except _Reached:
            COUNTS["accepted"] += 1
            check_request(request)  # it really was valid
            TOOL.check_options(tool_options or {})
        except REJECTIONS as exc:
            COUNTS["refused"] += 1
            assert str(exc).startswith(("request", "tool_options")), str(exc)

    prop()
    RAN.add("run")


@FAST
@given(st.from_regex(r"[a-z_.]{1,12}:[a-z_]{1,8}", fullmatch=True))
def test_tool_references_never_import_outside_the_allowlist(reference):
    RAN.add("references")
    before = set(sys.modules)
    COUNTS["cases"] += 1
    try:
        resolve_tool(reference, ToolRegistry())
        COUNTS["accepted"] += 1
        assert reference.startswith("steer_tools.examples")
    except REJECTIONS as exc:
        COUNTS["refused"] += 1
        assert repr(reference) in str(exc)
    module = reference.split(":")[0]
    if not module.startswith("steer_tools.examples"):
        assert set(sys.modules) == before, f"{reference} imported something"


def test_totals(capsys):
    """At least 500 generated cases; the assertions above already failed on any silent
    acceptance, wrong refusal or field-less error, so reaching here means 0 of each."""
    if len(RAN) < len(CONFIG_FIELDS) + len(OPTION_FIELDS) + 5:
        pytest.skip("run the whole module to check the totals")
    with capsys.disabled():
        print(f"\ninput properties: {COUNTS['cases']} generated cases, {COUNTS['accepted']} "
              f"accepted (all valid), {COUNTS['refused']} refused (all naming the field); "
              "silent acceptances 0, field-less errors 0")
    assert COUNTS["cases"] >= 500
