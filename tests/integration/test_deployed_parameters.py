"""A deployed run (no in-process session) re-checks every parameter in the worker: bad values
fail the run at once with one message naming the field, before any provider call (issue 12).

Before: ``{"k": "three"}`` or ``{"budget": {"dollars": 1}}`` failed later with a raw pydantic
traceback, and a REST-supplied ``tool`` such as ``"os:getpid"`` was imported and called."""

from __future__ import annotations

import pytest
from steer_llm_sdk.flows.orchestrate import orchestrate

pytestmark = pytest.mark.usefixtures("prefect_backend")


@pytest.fixture
def worker_env(llm_simulator, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", llm_simulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sim")
    monkeypatch.delenv("STEER_TOOL_MODULES", raising=False)
    llm_simulator.reset()
    return llm_simulator


@pytest.mark.parametrize(("parameters", "message"), [
    ({"tool_options": {"k": "three"}}, "tool_options['k']: got 'three'"),
    ({"tool_options": {"early_stp": False}}, "did you mean 'early_stop'?"),
    ({"config": {"budget": {"dollars": 1}}}, "config['budget']['dollars']: got 'dollars'"),
    ({"config": {"trace_id": "a\r\nb"}}, "config['trace_id']"),
    ({"config": "cheap"}, "config: got 'cheap'"),
    ({"request": ""}, "request: got ''"),
    ({"tool": "os:getpid"}, "cannot resolve tool 'os:getpid': module 'os' is not under an "
                            "allowed prefix"),
])
async def test_bad_deployed_parameters_fail_the_run_before_any_provider_call(
        worker_env, parameters, message):
    state = await orchestrate(**{"request": {"query": "Ship it?"}, "tool": "feasibility",
                                 "tool_options": {"k": 2}, **parameters}, return_state=True)
    assert state.is_failed()
    assert message in state.message
    assert "Traceback" not in state.message and "\n" not in state.message
    assert worker_env.stats.total_requests == 0  # no provider call was sent
