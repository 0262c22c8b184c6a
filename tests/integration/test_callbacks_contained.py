"""A broken redactor_cb or on_event never escapes run() nor breaks the run (issue 12).

Before: a raising redactor escaped ``run()``; one returning None raised a ValidationError about
OrchestrationEvent. Now: redactor failure -> payload replaced by "[redaction failed]" and one
warning per run; on_event failure -> that event dropped for the callback, one warning per run.
"""

from __future__ import annotations

import logging

import pytest

from steer_llm_sdk.events import REDACTION_FAILED, EventEmitter
from steer_llm_sdk.orchestration import (
    BundleTool,
    OrchestrationConfig,
    Orchestrator,
    ReplicateOutput,
    ToolRegistry,
)


class Echo(BundleTool):
    name = "echo-callbacks"

    async def run_replicate(self, request, seed, context):
        return ReplicateOutput(data={"v": 1})


def _raise(_: dict) -> dict:
    raise RuntimeError("redactor bug")


async def _run(cfg: OrchestrationConfig, on_event=None):
    registry = ToolRegistry()
    registry.register_tool(Echo())
    return await Orchestrator(registry).run({"query": "secret"}, "echo-callbacks", {"k": 2},
                                            cfg, on_event)


@pytest.mark.usefixtures("prefect_backend")
async def test_a_run_survives_a_raising_redactor_and_a_raising_callback(caplog):
    seen = []

    async def on_event(event):
        seen.append(event)
        raise ValueError("callback bug")

    caplog.set_level(logging.WARNING, logger="steer_llm_sdk.events")
    out = await _run(OrchestrationConfig(redactor_cb=_raise), on_event)
    assert out.status == "succeeded"
    assert len(seen) >= 4  # every event was still offered to the callback
    assert all(e.data == {"redacted": REDACTION_FAILED} for e in seen)  # never unredacted
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("redactor_cb raised RuntimeError('redactor bug')" in w for w in warnings) == 1
    assert sum("on_event callback failed" in w for w in warnings) == 1


@pytest.mark.usefixtures("prefect_backend")
async def test_a_run_survives_a_redactor_returning_none():
    seen = []
    out = await _run(OrchestrationConfig(redactor_cb=lambda data: None), seen.append)
    assert out.status == "succeeded"
    assert seen and all(e.data == {"redacted": REDACTION_FAILED} for e in seen)


@pytest.mark.parametrize("redactor", [_raise, lambda d: None, lambda d: [1], lambda d: {1: "x"},
                                      lambda d: "text"])
async def test_emitter_replaces_what_it_cannot_redact(redactor, caplog):
    got = []
    emitter = EventEmitter(got.append, trace_id="t", request_id="r", redactor=redactor)
    caplog.set_level(logging.WARNING, logger="steer_llm_sdk.events")
    for _ in range(3):
        await emitter.emit("tool_started", tool_name="x", api_key="sk-secret")
    assert [e.data for e in got] == [{"redacted": REDACTION_FAILED}] * 3
    assert emitter.redaction_failures == 3
    assert len([r for r in caplog.records if "redactor_cb" in r.getMessage()]) == 1
    assert "sk-secret" not in caplog.text


async def test_emitter_keeps_a_working_redactor_and_counts_callback_failures():
    def bad_callback(event):
        raise KeyError("x")

    emitter = EventEmitter(bad_callback, trace_id="t", request_id="r",
                           redactor=lambda d: {**d, "api_key": "***"})
    await emitter.emit("tool_started", api_key="sk-secret")
    await emitter.emit("tool_started", api_key="sk-secret")
    assert emitter.callback_failures == 2
    assert emitter.history[0].data == {"api_key": "***"}
