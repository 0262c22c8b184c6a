"""`steer` CLI: help everywhere, one-line errors, tool listing, and one real offline run."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steer_llm_sdk.cli import app
from steer_llm_sdk.cli._common import parse_request

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]

COMMANDS = [
    [], ["run"], ["tools"], ["simulator"], ["serve"], ["trigger"], ["runs"],
    ["server"], ["server", "start"], ["server", "stop"], ["server", "status"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "steer")
def test_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "Traceback" not in result.output


def test_bad_json_names_the_position():
    result = runner.invoke(app, ["run", "feasibility", '{"query": "x" "k": 1}'])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: REQUEST is not valid JSON")
    assert "line 1 column 15 (char 14)" in result.stderr
    assert "Traceback" not in result.output


def test_bad_json_in_options():
    result = runner.invoke(app, ["run", "feasibility", "text", "--options", "{k: 1}"])
    assert result.exit_code == 2
    assert "--options is not valid JSON" in result.stderr


def test_unknown_tool_lists_the_known_ones():
    result = runner.invoke(app, ["run", "no-such-tool", "plain text", "--simulator"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1  # one line
    assert "unknown tool 'no-such-tool'" in result.stderr
    assert "feasibility" in result.stderr


def test_import_path_outside_the_allowlist_is_refused_naming_the_rule():
    result = runner.invoke(app, ["run", "no_such_pkg.mod:tool", "text", "--simulator"])
    assert result.exit_code == 2
    assert "cannot resolve tool 'no_such_pkg.mod:tool'" in result.stderr
    assert "not under an allowed prefix" in result.stderr
    assert "STEER_TOOL_MODULES=no_such_pkg" in result.stderr


def test_broken_import_path_names_reference_and_error(monkeypatch):
    monkeypatch.setenv("STEER_TOOL_MODULES", "no_such_pkg")
    result = runner.invoke(app, ["run", "no_such_pkg.mod:tool", "text", "--simulator"])
    assert result.exit_code == 2
    assert "cannot resolve tool 'no_such_pkg.mod:tool'" in result.stderr
    assert "ModuleNotFoundError" in result.stderr


def test_missing_api_key_suggests_the_simulator(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = runner.invoke(app, ["run", "feasibility", "text"])
    assert result.exit_code == 2
    assert "OPENAI_API_KEY is not set" in result.stderr and "--simulator" in result.stderr


def test_tools_lists_entry_points():
    result = runner.invoke(app, ["tools"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("feasibility"))
    assert "entry point steer_tools.examples:feasibility_tool" in line
    assert "Feasibility analysis" in line


def test_parse_request_forms():
    assert parse_request("plain words") == {"query": "plain words"}
    assert parse_request('"a JSON string"') == {"query": "a JSON string"}
    assert parse_request('{"query": "q", "context": 1}') == {"query": "q", "context": 1}


def test_request_must_be_an_object():
    result = runner.invoke(app, ["run", "feasibility", "[1, 2]"])
    assert result.exit_code == 2
    assert "REQUEST must be a JSON object or text, got a JSON list" in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", [["runs"], ["trigger", "feasibility-daily"], ["serve"],
                                     ["run", "feasibility", "text", "--simulator"]],
                         ids=lambda c: c[0])
def test_no_server_names_prefect_api_url(command):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{_closed_port()}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert f"no Prefect server reachable at PREFECT_API_URL={url}" in result.stderr
    assert "steer server start" in result.stderr
    assert "Traceback" not in result.output


def test_server_status_without_server(steer_home):
    result = runner.invoke(app, ["server", "status"])
    assert result.exit_code == 1
    assert "no steer server running" in result.stdout
    assert runner.invoke(app, ["server", "stop"]).stdout.strip() == "no steer server running"


@pytest.mark.usefixtures("prefect_backend")
def test_run_with_simulator_prints_the_report():
    result = runner.invoke(app, ["run", "feasibility", '{"query": "Ship v2 in a week"}',
                                 "--k", "3", "--options", '{"early_stop": false}',
                                 "--simulator"])
    assert result.exit_code == 0, (result.output, result.exception)
    out = result.stdout
    assert "Status: succeeded   tool: feasibility" in out
    assert "Replicates: 3 of k=3 (3 valid)" in out
    assert "Confidence:" in out and "Trace id:" in out
    assert "simulator at http://127.0.0.1:" in result.stderr


@pytest.mark.usefixtures("prefect_backend")
def test_run_json_is_an_orchestration_output():
    from steer_llm_sdk.output import OrchestrationOutput

    result = runner.invoke(app, ["run", "feasibility", "Hire two engineers by May", "--k", "2",
                                 "--config", '{"budget": {"cost_usd": 1}}', "--simulator",
                                 "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    out = OrchestrationOutput.model_validate(json.loads(result.stdout))
    assert out.status == "succeeded"
    assert out.metadata["tool_name"] == "feasibility"
    assert out.evidence_bundle.meta.k == 2
    assert out.metadata["budget"]["limits"] == {"cost_usd": 1.0}


def test_prefect_yaml_describes_what_steer_serve_serves():
    """`prefect deploy --all` (deployments/prefect.yaml) and `steer serve` must not drift."""
    import yaml
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.flows import load_flow_from_entrypoint
    from steer_llm_sdk.deployments.serve import ENTRYPOINT, build_deployments, example_parameters

    from steer_llm_sdk.config import OrchestrationConfig

    raw = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    model = PrefectYamlModel.model_validate(raw)  # prefect's own loader model
    assert model.pull == []  # module entrypoint: workers need the package, not a checkout
    specs = {d.name: d.model_dump(exclude_unset=True, mode="json") for d in model.deployments}
    served = {d.name: d for d in build_deployments()}
    assert set(specs) == set(served) == {"feasibility-daily", "feasibility-interval"}
    for name, spec in specs.items():
        assert spec["entrypoint"] == ENTRYPOINT == served[name].entrypoint
        assert spec["work_pool"]["name"] == "steer-process"
        assert set(spec["tags"]) == set(served[name].tags)
        params = dict(spec["parameters"])
        params["config"] = OrchestrationConfig.model_validate(params["config"]).to_parameters()
        assert params == example_parameters(name.removeprefix("feasibility-"))
        schedule = served[name].schedules[0].schedule
        (yaml_schedule,) = next(d for d in raw["deployments"] if d["name"] == name)["schedules"]
        if "cron" in yaml_schedule:
            assert yaml_schedule["cron"] == schedule.cron
        else:
            assert yaml_schedule["interval"] == schedule.interval.total_seconds()
        assert yaml_schedule["timezone"] == schedule.timezone == "UTC"
    flow = load_flow_from_entrypoint(ENTRYPOINT)
    assert flow.name == "steer-orchestrate" and flow.persist_result is True
