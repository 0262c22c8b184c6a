"""`steer schedule` / SteerLLMClient.schedule against a real Prefect API (the session harness):
deployments of the orchestration flow for any resolvable tool, validated before creation."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from steer_llm_sdk import SteerLLMClient
from steer_llm_sdk.cli import app
from steer_llm_sdk.schedules import (
    SCHEDULE_TAG,
    ScheduleValidationError,
    acreate_schedule,
    adelete_schedule,
    alist_schedules,
    aset_schedule_paused,
    schedule_parameters,
)

runner = CliRunner()
TOOL = "steer_tools.examples:feasibility_tool"  # an import path, not the entry point name


def _name() -> str:
    return f"sched-{uuid.uuid4().hex[:8]}"


@pytest.mark.usefixtures("prefect_backend")
async def test_schedule_lifecycle_through_the_api():
    from prefect.client.orchestration import get_client

    name = _name()
    info = await acreate_schedule(
        name, TOOL, {"query": "Ship it?"}, {"k": 2}, {"budget": {"cost_usd": 0.1}},
        cron="0 6 * * MON")
    assert info.schedule == "cron 0 6 * * MON (UTC)" and not info.paused
    async with get_client() as client:
        dep = await client.read_deployment_by_name(f"steer-orchestrate/{name}")
    assert dep.entrypoint == "steer_llm_sdk.deployments.serve.deployed_orchestrate"
    assert SCHEDULE_TAG in dep.tags and f"tool:{TOOL}" in dep.tags
    assert dep.parameters["tool"] == TOOL and dep.parameters["tool_options"] == {"k": 2}
    assert dep.parameters["config"]["budget"] == {"cost_usd": 0.1}
    assert dep.work_pool_name is None  # `steer serve` runs it
    assert name in [s.name for s in await alist_schedules()]

    assert (await aset_schedule_paused(name, True)).paused is True
    async with get_client() as client:
        assert (await client.read_deployment(dep.id)).paused is True
    assert (await aset_schedule_paused(name, False)).paused is False
    await adelete_schedule(name)
    assert name not in [s.name for s in await alist_schedules()]
    with pytest.raises(LookupError, match=f"no schedule named '{name}'"):
        await aset_schedule_paused(name, True)


@pytest.mark.usefixtures("prefect_backend")
def test_client_schedule_on_a_work_pool_and_interval():
    from prefect.client.orchestration import get_client

    from steer_llm_sdk.orchestration.orchestrator import run_coroutine_sync

    name, pool = _name(), f"pool-{uuid.uuid4().hex[:6]}"
    info = SteerLLMClient().schedule(name, "feasibility", "plain text query", interval_s=90,
                                     work_pool=pool)
    assert info.schedule == "every 90 s" and info.work_pool == pool

    async def read() -> tuple:
        async with get_client() as client:
            return (await client.read_work_pool(pool),
                    await client.read_deployment_by_name(f"steer-orchestrate/{name}"))

    work_pool, dep = run_coroutine_sync(read())
    assert work_pool.type == "process"
    assert dep.parameters["request"] == {"query": "plain text query"}
    run_coroutine_sync(adelete_schedule(name))


@pytest.mark.parametrize(("kwargs", "field", "fragment"), [
    ({"tool": "no-such-tool"}, "tool", "unknown tool 'no-such-tool'"),
    ({"tool": "no_pkg.mod:tool"}, "tool", "not under an allowed prefix .*nothing was imported"),
    ({"request": 42}, "request", "a non-blank string or a JSON object"),
    ({"tool_options": {"k": 1}}, "options", "greater than or equal to 2"),
    ({"config": {"budget": {"coins": 1}}}, "config", r"\[.budget.\]\[.coins.\]"),
    ({"config": {"idempotency_key": "k"}}, "config", "idempotency_key"),
])
def test_bad_parameters_name_the_field(kwargs, field, fragment):
    args = {"tool": TOOL, "request": {"query": "q"}, **kwargs}
    with pytest.raises(ScheduleValidationError, match=fragment) as info:
        schedule_parameters(**args)
    assert info.value.field == field


@pytest.mark.parametrize(("args", "expected"), [
    (["--tool", "nope", "--request", "x", "--interval", "5"],
     "error: --tool: unknown tool 'nope'"),
    (["--tool", TOOL, "--request", '{"query": 1', "--interval", "5"],
     "error: --request is not valid JSON"),
    (["--tool", TOOL, "--request", "x", "--options", '{"k": 1}', "--interval", "5"],
     "error: --options: "),
    (["--tool", TOOL, "--request", "x", "--cron", "every day"],
     "error: --cron: 'every day' is not a valid cron expression"),
    (["--tool", TOOL, "--request", "x"], "error: schedule: give exactly one of --cron"),
])
def test_cli_rejects_bad_arguments_in_one_line(args, expected):
    result = runner.invoke(app, ["schedule", "create", "nightly", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1
