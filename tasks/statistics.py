"""The final task: replicates -> EvidenceBundle (scipy statistics, pure functions).

Async on purpose: a sync task called from the async flow runs on a worker thread while the
event loop blocks waiting for it, which serialised concurrent orchestrations; the statistics
take a few milliseconds, so running them inline on the loop is cheaper.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from steer_llm_sdk.tasks.runtime import get_session

from steer_tools.assembly import assemble_bundle
from steer_tools.evidence import EvidenceBundle, Replicate


# task_run_name: the name the docs and the UI show, without Prefect's random "-316" suffix
@task(name="compute-statistics", task_run_name="compute-statistics", cache_policy=NONE,
      persist_result=False)
async def compute_statistics(
    session_id: str,
    tool_name: str,
    replicates: list[Replicate],
    options: dict[str, Any],
    elapsed_ms: float,
    early_stopped: bool,
    early_stop_reason: str | None,
) -> EvidenceBundle:
    session = get_session(session_id)
    if session is None:
        raise RuntimeError(f"run session {session_id!r} is gone")
    tool = session.tools[tool_name]
    return assemble_bundle(
        tool, replicates, tool.parse_options(options), elapsed_ms=elapsed_ms,
        early_stopped=early_stopped, early_stop_reason=early_stop_reason,
    )
