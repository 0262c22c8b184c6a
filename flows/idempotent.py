"""Idempotency inside the flow: deployed, scheduled, triggered and REST-created runs follow the
same rules as in-process runs (steer_llm_sdk/reliability/run_claims.py).

Prefect's own ``idempotency_key`` on ``create_flow_run`` only deduplicates run *creation* and
returns the earlier run whatever its parameters, and a REST caller or the UI can create runs
without it. The flow itself is the one place every path passes, so a run whose config carries
an idempotency key claims it here, in the shared store, before any provider call: the same
request replays the earlier output (0 provider calls), another request fails the run at once
with ``ConflictError`` in its state message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prefect.states import Failed
from steer_llm_sdk.tasks.runtime import RunSession

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.output import OrchestrationOutput
from steer_llm_sdk.reliability.idempotency import make_idempotency_store
from steer_llm_sdk.reliability.run_claims import claim_run


def as_flow_result(output: OrchestrationOutput, message: str) -> Any:
    """The flow's return value: the output JSON, or a Failed state carrying it."""
    if output.status == "failed":
        return Failed(message=message, data=output.model_dump(mode="json"))
    return output.model_dump_json()


def _output_of(result: Any) -> OrchestrationOutput | None:
    if isinstance(result, str):
        return OrchestrationOutput.model_validate_json(result)
    data = getattr(result, "data", None)
    return OrchestrationOutput.model_validate(data) if isinstance(data, dict) else None


async def run_with_claim(session: RunSession, cfg: OrchestrationConfig, tool: str | None,
                         payload: dict[str, Any], tool_options: dict[str, Any] | None,
                         run: Callable[[], Awaitable[Any]]) -> Any:
    """Claim ``cfg.idempotency_key`` in the shared store (``STEER_IDEMPOTENCY_URL``), then run,
    replay or fail exactly as ``Orchestrator.run`` would."""
    store = make_idempotency_store()
    try:
        claim, replay = await claim_run(store, cfg, session.reliability, tool, payload,
                                        tool_options)
        if claim is None:
            assert replay is not None
            return as_flow_result(replay, "replayed the failed run of this idempotency key")
        session.claim, session.run_key = claim, claim.key
        try:
            result = await run()
        except BaseException as exc:
            await claim.raised(exc)
            raise
        output = _output_of(result)
        if output is None:
            await claim.store.release(claim.key)
        else:
            await claim.finish(output)
        return result
    finally:
        await store.aclose()
