"""`make demo` says what its numbers measure: the analysis time is labelled as such, and the
wall time the user waited is split into start-up, Prefect API and flow run (issue: a 7 s demo
that reported "elapsed: 50 ms")."""

from __future__ import annotations

import re

import pytest

from steer_tools.registry import get_global_registry

WALL = re.compile(r"Wall time ([\d.]+) s: Python and imports ([\d.]+) s, Prefect API ready "
                  r"([\d.]+) s, the flow run ([\d.]+) s, of which the analysis itself ([\d.]+) s")


@pytest.mark.usefixtures("prefect_backend")
async def test_demo_says_where_the_wall_time_went(llm_simulator, capsys):
    from steer_llm_sdk import demo

    try:
        assert await demo._run(llm_simulator.base_url, "sk-simulator") == 0
    finally:
        get_global_registry().unregister("feasibility")  # the demo registers its own
    printed = capsys.readouterr().out
    assert "Prefect API: at PREFECT_API_URL" in printed
    analysis_ms = re.search(r"analysis: (\d+) ms \(in the flow run, not Prefect's start-up\)",
                            printed)
    assert analysis_ms is not None, printed
    assert "elapsed:" not in printed
    total, imports, api, flow, analysis = map(float, WALL.search(printed).groups())
    assert abs(total - (imports + api + flow)) <= 0.15  # the parts add up (one decimal each)
    assert analysis <= flow + 0.01
    assert abs(analysis * 1000 - float(analysis_ms.group(1))) <= 6  # same number, two units
