"""Deployments of the orchestration flow: recurring analyses and runs triggered through the API.

    python -m deployments.serve            # or: steer serve
    steer trigger feasibility-daily --wait

Serving keeps one long-lived process that polls the Prefect server and runs each flow run in a
child process, so it needs no work pool. The same deployments are described for
``prefect deploy --all`` + ``prefect worker start --pool steer-process`` in ``prefect.yaml``
next to this file (many hosts, managed workers).

Two things must reach a flow run that starts in another process:

* **The tool.** Parameters carry a tool *reference* (registry name, entry point of group
  ``steer_llm_sdk.tools``, or ``'module:attribute'`` under a module prefix allowed by
  ``STEER_TOOL_MODULES`` in the worker's environment), never a tool object; the flow resolves
  it in the worker with :func:`steer_tools.resolve.resolve_tool` (an allowlist: nothing else
  is imported or called), and a refused or broken reference fails the run in its first second
  with a message naming it and the rule (docs/security.md).
* **The result.** Triggers that wait read the return value from result storage, so the deployed
  flow persists results (:data:`deployed_orchestrate`) to a local directory given by an absolute
  path: any process on the same host can read it. For several hosts use a shared block (S3, GCS,
  SMB) instead; see docs/deployments.md.

LLM endpoints and keys come from the serving process's environment (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``), never from parameters, so they never show up in the UI or the database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval
from prefect.settings import get_current_settings
from prefect.types.entrypoint import EntrypointType
from prefect.utilities.callables import ParameterSchema
from steer_llm_sdk.deployments.results import result_serializer
from steer_llm_sdk.deployments.schema import parameter_schema
from steer_llm_sdk.flows.orchestrate import check_deployed_parameters, orchestrate

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.errors import OrchestratorError
from steer_llm_sdk.validation import InputError
from steer_tools.base import Tool
from steer_tools.inputs import check_config
from steer_tools.registry import ToolRegistry
from steer_tools.resolve import resolve_tool

FLOW_NAME = "steer-orchestrate"
DAILY_DEPLOYMENT = "feasibility-daily"
INTERVAL_DEPLOYMENT = "feasibility-interval"
DAILY_CRON = "0 7 * * *"
DEFAULT_INTERVAL_S = 3600.0
SCHEDULE_TIMEZONE = "UTC"
DEPLOYMENT_TAGS = ["steer", "recurring"]
# Where the worker imports the deployed flow from; prefect.yaml uses the same reference.
ENTRYPOINT = "steer_llm_sdk.deployments.serve.deployed_orchestrate"

EXAMPLE_REQUEST: dict[str, Any] = {
    "query": "Migrate our 40-service monolith's billing module to an event-driven design in "
             "one quarter with a team of four engineers, without downtime."
}
EXAMPLE_TOOL = "feasibility"  # the entry point of steer_tools.examples:feasibility_tool
EXAMPLE_TOOL_OPTIONS: dict[str, Any] = {"k": 5}
# A triggered or scheduled run waits up to one poll before the runner starts it: with Prefect's
# default 10 s, trigger -> result took 12.5 s for a run of ~1 s; with 2 s, 6.7 s. The price is
# one small API query every 2 s.
SERVE_POLL_S = 2.0


def results_dir() -> Path:
    """Absolute directory for persisted flow results.

    ``STEER_RESULTS_DIR`` wins; otherwise Prefect's local storage path (``$PREFECT_HOME/storage``).
    Made absolute here, because a result written under an absolute path can be read back by any
    process on the host without sharing its PREFECT_HOME."""
    configured = os.environ.get("STEER_RESULTS_DIR")
    default = get_current_settings().results.local_storage_path
    path = Path(configured) if configured else Path(default)
    return path.expanduser().resolve()


def deployed_flow(storage_dir: Path | None = None) -> Flow[..., Any]:
    """The orchestration flow as deployed: results persisted where a trigger can read them."""
    # A Path (not an unsaved block) needs no server at import time; Prefect writes results under
    # it with absolute keys, which readers resolve without the writer's settings. The file is
    # the OrchestrationOutput as plain JSON, not cloudpickle (deployments/results.py).
    return orchestrate.with_options(persist_result=True,
                                    result_storage=storage_dir or results_dir(),
                                    result_serializer=result_serializer())


# Module-level so a worker can import it by entry point (see ENTRYPOINT and prefect.yaml).
deployed_orchestrate = deployed_flow()


def example_parameters(schedule: str) -> dict[str, Any]:
    """A recurring analysis: JSON only, so the UI renders it and anyone can re-run it."""
    config = OrchestrationConfig(budget={"cost_usd": 0.5}, metadata={"schedule": schedule})
    return {
        "request": dict(EXAMPLE_REQUEST),
        "tool": EXAMPLE_TOOL,
        "tool_options": dict(EXAMPLE_TOOL_OPTIONS),
        "config": config.to_parameters(),
    }


def _deployment(flow: Flow[..., Any], name: str, parameters: dict[str, Any],
                tags: Sequence[str], **schedule: Any) -> RunnerDeployment:
    deployment = flow.to_deployment(
        name=name,
        parameters=parameters,
        tags=list(tags),
        description=f"Recurring steer analysis ({name}); trigger with `steer trigger {name}`.",
        entrypoint_type=EntrypointType.MODULE_PATH,
        **schedule,
    )
    # The deployment record names the flow *with* result persistence, as prefect.yaml does.
    deployment.entrypoint = ENTRYPOINT
    # The full nested schema: the server refuses wrongly typed nested values (HTTP 409).
    deployment._parameter_openapi_schema = ParameterSchema(
        **parameter_schema(_default_tool(parameters.get("tool"))))
    return deployment


def _default_tool(reference: Any) -> Tool | None:
    """The deployment's default tool, when it loads here (its options shape the schema)."""
    if not isinstance(reference, str):
        return None
    try:
        return resolve_tool(reference, ToolRegistry(), field="tool")
    except (ValueError, OrchestratorError):
        return None


def build_deployments(
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    cron: str = DAILY_CRON,
    parameters: dict[str, Any] | None = None,
    tags: Sequence[str] = DEPLOYMENT_TAGS,
    storage_dir: Path | None = None,
) -> list[RunnerDeployment]:
    """The daily (cron) and interval deployments of the orchestration flow.

    ``parameters`` replaces the example analysis for both; it must be JSON and secret-free, and
    is checked like a run's parameters (a bad default would fail every scheduled run)."""
    if parameters is not None:
        if not isinstance(parameters, dict) or "request" not in parameters:
            raise InputError("parameters", parameters, "a dict with 'request' and optionally "
                             "'tool', 'tool_options', 'config'")
        check_deployed_parameters(parameters["request"], parameters.get("tool"),
                                  parameters.get("tool_options"),
                                  check_config(parameters.get("config")))
    flow = deployed_flow(storage_dir)
    return [
        _deployment(flow, DAILY_DEPLOYMENT, parameters or example_parameters("daily"), tags,
                    schedules=[Cron(cron, timezone=SCHEDULE_TIMEZONE)]),
        _deployment(flow, INTERVAL_DEPLOYMENT, parameters or example_parameters("interval"),
                    tags, schedules=[Interval(timedelta(seconds=interval_s),
                                              timezone=SCHEDULE_TIMEZONE)]),
    ]


def check_tool_reference(reference: str) -> Any:
    """Fail before serving if the default tool cannot load in this environment: every
    scheduled run would otherwise fail the same way. Returns the loaded tool."""
    return resolve_tool(reference, ToolRegistry(), field="tool")


def describe_tool(reference: str, tool: Any) -> str:
    """One line for the serving log: the model and endpoint the runs will call, and whether a
    key is set. Never the key; any user:password in the endpoint URL is dropped too."""
    parts = [f"runs of tool {reference!r} call"]
    model = getattr(tool, "model", None)
    llm = getattr(tool, "llm", None)
    parts.append(f"model {model}" if model else "its own code (no model attribute)")
    base_url = getattr(llm, "base_url", None)
    if base_url:
        url = urlsplit(str(base_url))
        host = url.netloc.rsplit("@", 1)[-1]
        parts.append(f"at {urlunsplit(url._replace(netloc=host))}")
    has_key = getattr(llm, "has_credentials", None)
    if has_key is True:
        parts.append("(API key: set)")
    elif has_key is False:
        parts.append("(API key: NOT SET, runs will fail: export OPENAI_API_KEY)")
    return " ".join(parts)


def runner_poll_seconds(poll_s: float | None = None) -> float:
    """Seconds between the serving process's checks for due runs: ``poll_s`` if given, else
    the user's PREFECT_RUNNER_POLL_FREQUENCY (environment or Prefect profile), else
    :data:`SERVE_POLL_S` (Prefect's own default of 10 s is for fleets of workers)."""
    if poll_s is not None:
        if poll_s <= 0:
            raise ValueError(f"poll_s must be > 0 seconds, got {poll_s}")
        return float(poll_s)
    runner = get_current_settings().runner
    if "poll_frequency" in runner.model_fields_set:
        return float(runner.poll_frequency)
    return SERVE_POLL_S


def serve_deployments(
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    cron: str = DAILY_CRON,
    parameters: dict[str, Any] | None = None,
    limit: int | None = None,
    pause_on_shutdown: bool = True,
    poll_s: float | None = None,
    include_schedules: bool = True,
    builtin: bool = True,
) -> None:
    """Register the deployments and run their flow runs until interrupted (blocking).

    ``pause_on_shutdown`` pauses the schedules when this process stops, so the server does not
    pile up scheduled runs that nobody executes. ``poll_s``: see :func:`runner_poll_seconds`.
    ``include_schedules`` also serves every `steer schedule create` deployment without a work
    pool (not paused on shutdown); ``builtin=False`` serves only those."""
    poll = runner_poll_seconds(poll_s)
    extra = served_schedules() if include_schedules else []
    if not builtin:
        if not extra:
            raise LookupError("no schedules to serve: create one with `steer schedule create` "
                              "(without --pool)")
        _serve_with_schedules([], extra, limit=limit, pause_on_shutdown=pause_on_shutdown,
                              poll=poll)
        return
    reference = (parameters or {}).get("tool", EXAMPLE_TOOL)
    if reference:
        tool = check_tool_reference(str(reference))
        print(describe_tool(str(reference), tool), flush=True)
    print(f"checking for due runs every {poll:g} s (--poll or PREFECT_RUNNER_POLL_FREQUENCY)",
          flush=True)
    deployments = build_deployments(interval_s=interval_s, cron=cron, parameters=parameters)
    if not extra:
        serve(*deployments, limit=limit, pause_on_shutdown=pause_on_shutdown,
              print_starting_message=True, query_seconds=poll)
        return
    _serve_with_schedules(deployments, extra, limit=limit, pause_on_shutdown=pause_on_shutdown,
                          poll=poll)


def served_schedules() -> list[tuple[Any, str]]:
    """(id, name) of every `steer schedule create` deployment without a work pool: `steer serve`
    runs them (a pool's workers run the others)."""
    import asyncio

    from steer_llm_sdk.schedules import alist_schedules

    return [(s.deployment_id, s.name) for s in asyncio.run(alist_schedules())
            if not s.work_pool]


def _serve_with_schedules(deployments: list[RunnerDeployment], extra: list[tuple[Any, str]], *,
                          limit: int | None, pause_on_shutdown: bool, poll: float) -> None:
    """``prefect.serve`` plus deployments created elsewhere (by id, not re-applied: their
    parameters, schedules and paused state stay as their owner set them). On shutdown only the
    built-in deployments are paused; a user's schedule keeps the state `steer schedule` gave it.
    Uses the Runner's deployment registry (Prefect 3.9); see docs/scaling.md."""
    import asyncio
    import uuid

    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner

    class _Runner(Runner):
        own: set[Any] = set()

        async def _pause_schedules(self) -> None:
            for deployment_id in self.own:
                await self._client.pause_deployment(deployment_id)

    runner = _Runner(pause_on_shutdown=pause_on_shutdown, limit=limit, query_seconds=poll)
    runner.own = {runner.add_deployment(d) for d in deployments}
    for deployment_id, name in extra:
        runner._deployment_registry.register_deployment(uuid.UUID(str(deployment_id)), name)
    print(f"serving {len(deployments)} built-in deployments and {len(extra)} schedules: "
          + ", ".join(name for _, name in extra), flush=True)
    with contextlib.suppress(KeyboardInterrupt, TerminationSignal):
        asyncio.run(runner.start())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve",
                                     description="Serve the steer deployments (needs a Prefect "
                                     "server: PREFECT_API_URL).")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S,
                        help="seconds between runs of feasibility-interval")
    parser.add_argument("--cron", default=DAILY_CRON, help="schedule of feasibility-daily")
    parser.add_argument("--limit", type=int, default=None, help="max concurrent flow runs")
    parser.add_argument("--poll", type=float, default=None,
                        help=f"seconds between checks for due runs (default {SERVE_POLL_S:g}, "
                        "or PREFECT_RUNNER_POLL_FREQUENCY)")
    args = parser.parse_args(argv)
    serve_deployments(interval_s=args.interval, cron=args.cron, limit=args.limit,
                      poll_s=args.poll)
    return 0


if __name__ == "__main__":
    sys.exit(main())
