"""CLI details a new user meets in the first hour: help that reads right, a --k range that
matches BundleOptions, `steer runs` columns that stay aligned, and a `steer serve` that says
what it calls and how often it looks for work."""

from __future__ import annotations

from datetime import datetime

import pytest
from typer.testing import CliRunner

from steer_llm_sdk.cli import app
from steer_llm_sdk.cli._remote import runs_table

runner = CliRunner()


@pytest.mark.parametrize("command", [["run"], ["trigger"], ["runs"], ["serve"]],
                         ids=lambda c: c[0])
def test_flags_read_as_flags(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help " in result.output


def test_k_range_is_the_bundle_range():
    from steer_tools.bundle import BundleOptions

    field = BundleOptions.model_fields["k"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert (bounds["Ge"].ge, bounds["Le"].le) == (2, 50)
    help_text = runner.invoke(app, ["run", "--help"]).output
    assert "[2<=x<=50]" in help_text
    for bad in ("1", "51"):
        result = runner.invoke(app, ["run", "feasibility", "text", "--k", bad, "--simulator"])
        assert result.exit_code == 2
        assert "'--k'" in result.output


def _row(name: str, deployment: str | None, tool: str, conf: float | None) -> dict:
    return {"flow_run_id": "0f3c1e2a-0000-4000-8000-00000000000" + str(len(name) % 10),
            "name": name, "state": "COMPLETED", "start": datetime(2026, 12, 1, 4, 5, 6),
            "deployment": deployment, "tool": tool, "confidence": conf, "cost_usd": 0.000123}


def test_runs_columns_align_for_long_names():
    rows = [_row("feasibility-3617c6c61a6c", "feasibility-daily", "feasibility", 0.81),
            _row("quarterly-risk-review-of-billing-8a1f0c", None,
                 "mypkg.tools:quarterly_risk_tool", None)]
    lines = runs_table(rows)
    assert len(lines) == 3
    ids = [line.rindex("0f3c1e2a") for line in lines[1:]]
    assert ids[0] == ids[1] == lines[0].index("flow run id")
    tools = [line.index(t) for line, t in zip(lines[1:], ("feasibility  ", "mypkg"),
                                                 strict=True)]
    assert tools[0] == tools[1] == lines[0].index("tool")
    assert "quarterly-risk-review-of-billing-8a1f0c  " in lines[2]  # not truncated
    assert lines[1].split()[-3:-1] == ["0.810", "0.000123"]


def test_serve_log_names_model_and_endpoint_never_the_key(monkeypatch):
    from steer_llm_sdk.deployments.serve import check_tool_reference, describe_tool

    monkeypatch.setenv("STEER_MODEL", "openai:gpt-4.1-nano")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxyuser:proxypass@127.0.0.1:8765/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-marker-never-logged")
    line = describe_tool("feasibility", check_tool_reference("feasibility"))
    assert "model openai:gpt-4.1-nano" in line
    assert "at http://127.0.0.1:8765/v1" in line
    assert "(API key: set)" in line
    assert "sk-marker" not in line and "proxypass" not in line
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    line = describe_tool("feasibility", check_tool_reference("feasibility"))
    assert "at https://api.openai.com/v1" in line
    assert "API key: NOT SET" in line and "OPENAI_API_KEY" in line


def test_serve_polls_every_2_s_unless_the_user_chose():
    from prefect.settings import PREFECT_RUNNER_POLL_FREQUENCY, temporary_settings
    from steer_llm_sdk.deployments.serve import runner_poll_seconds

    assert runner_poll_seconds() == 2.0  # not Prefect's 10 s
    assert runner_poll_seconds(0.5) == 0.5
    with temporary_settings({PREFECT_RUNNER_POLL_FREQUENCY: 10}):  # explicit, even if default
        assert runner_poll_seconds() == 10.0
    with temporary_settings({PREFECT_RUNNER_POLL_FREQUENCY: 7}):
        assert runner_poll_seconds() == 7.0
        assert runner_poll_seconds(3) == 3.0
    with pytest.raises(ValueError, match="poll_s must be > 0"):
        runner_poll_seconds(0)
