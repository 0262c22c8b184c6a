"""Deployments of the orchestration flow: recurring analyses and runs triggered through the API.

    python -m deployments.serve            # or: steer serve
    steer trigger feasibility-daily --wait

Serving keeps one long-lived process that polls the Prefect server and runs each flow run in a
child process, so it needs no work pool. The same deployments are described for
``prefect deploy --all`` + ``prefect worker start --pool steer-process`` in ``prefect.yaml``
next to this file (many hosts, managed workers).

Two things must reach a flow run that starts in another process:

* **The tool.** Parameters carry a tool *reference* (registry name, entry point of group
  ``steer_llm_sdk.tools``, or ``'module:attribute'``), never a tool object; the flow resolves it
  in the worker with :func:`steer_tools.resolve.resolve_tool`, and a reference that does not
  import fails the run with a message naming it and the import error.
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

from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval
from prefect.settings import get_current_settings
from prefect.types.entrypoint import EntrypointType
from steer_llm_sdk.flows.orchestrate import orchestrate

from steer_llm_sdk.config import OrchestrationConfig

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
    # it with absolute keys, which readers resolve without the writer's settings.
    return orchestrate.with_options(persist_result=True,
                                    result_storage=storage_dir or results_dir())


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
    return deployment


def build_deployments(
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    cron: str = DAILY_CRON,
    parameters: dict[str, Any] | None = None,
    tags: Sequence[str] = DEPLOYMENT_TAGS,
    storage_dir: Path | None = None,
) -> list[RunnerDeployment]:
    """The daily (cron) and interval deployments of the orchestration flow.

    ``parameters`` replaces the example analysis for both; it must be JSON and secret-free."""
    flow = deployed_flow(storage_dir)
    return [
        _deployment(flow, DAILY_DEPLOYMENT, parameters or example_parameters("daily"), tags,
                    schedules=[Cron(cron, timezone=SCHEDULE_TIMEZONE)]),
        _deployment(flow, INTERVAL_DEPLOYMENT, parameters or example_parameters("interval"),
                    tags, schedules=[Interval(timedelta(seconds=interval_s),
                                              timezone=SCHEDULE_TIMEZONE)]),
    ]


def check_tool_reference(reference: str) -> None:
    """Fail before serving if the default tool cannot load in this environment: every
    scheduled run would otherwise fail the same way."""
    from steer_tools.registry import ToolRegistry
    from steer_tools.resolve import resolve_tool

    resolve_tool(reference, ToolRegistry())


def serve_deployments(
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    cron: str = DAILY_CRON,
    parameters: dict[str, Any] | None = None,
    limit: int | None = None,
    pause_on_shutdown: bool = True,
    include_schedules: bool = True,
    builtin: bool = True,
) -> None:
    """Register the deployments and run their flow runs until interrupted (blocking).

    ``pause_on_shutdown`` pauses the schedules when this process stops, so the server does not
    pile up scheduled runs that nobody executes. ``include_schedules`` also serves every
    `steer schedule create` deployment without a work pool (not paused on shutdown);
    ``builtin=False`` serves only those."""
    extra = served_schedules() if include_schedules else []
    if not builtin:
        if not extra:
            raise LookupError("no schedules to serve: create one with `steer schedule create` "
                              "(without --pool)")
        _serve_with_schedules([], extra, limit=limit, pause_on_shutdown=pause_on_shutdown)
        return
    tool = (parameters or {}).get("tool", EXAMPLE_TOOL)
    if tool:
        check_tool_reference(str(tool))
    deployments = build_deployments(interval_s=interval_s, cron=cron, parameters=parameters)
    if not extra:
        serve(*deployments, limit=limit, pause_on_shutdown=pause_on_shutdown,
              print_starting_message=True)
        return
    _serve_with_schedules(deployments, extra, limit=limit, pause_on_shutdown=pause_on_shutdown)


def served_schedules() -> list[tuple[Any, str]]:
    """(id, name) of every `steer schedule create` deployment without a work pool: `steer serve`
    runs them (a pool's workers run the others)."""
    import asyncio

    from steer_llm_sdk.schedules import alist_schedules

    return [(s.deployment_id, s.name) for s in asyncio.run(alist_schedules())
            if not s.work_pool]


def _serve_with_schedules(deployments: list[RunnerDeployment], extra: list[tuple[Any, str]], *,
                          limit: int | None, pause_on_shutdown: bool) -> None:
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

    runner = _Runner(pause_on_shutdown=pause_on_shutdown, limit=limit)
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
    args = parser.parse_args(argv)
    serve_deployments(interval_s=args.interval, cron=args.cron, limit=args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
