"""One idempotency protocol for orchestration runs, shared by every entry point.

In-process runs (``Orchestrator.run``) claim the key before starting the flow; runs created
from a deployment (``steer trigger``, ``client.trigger``, a schedule, the REST API, the UI) claim
it inside the flow, because that is the one place every path passes. Both go through these
functions, so the rules are the same everywhere:

* same key, same request (request + tool + tool options) -> the earlier run's output;
* same key, another request -> ``ConflictError`` before any provider call;
* same key while another worker runs it -> wait (at most the caller's own time budget), then
  its output; if that run fails, its classified error (one execution for all waiters);
* a crashed owner's key is free again within one lease (heartbeats, see ``idempotency``).

Keys are scoped per tool (``scoped_key``) and the request hash is the canonical JSON hash of
``{"request", "tool", "tool_options"}``, whichever entry point computed it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from steer_llm_sdk.config import OrchestrationConfig, ReliabilityConfig
from steer_llm_sdk.errors import (
    BudgetExceeded,
    OrchestratorError,
    ProviderError,
    ToolExecutionError,
)
from steer_llm_sdk.output import OrchestrationOutput
from steer_llm_sdk.reliability.idempotency import (
    IdempotencyStore,
    SharedFailure,
    canonical_request_hash,
    scoped_key,
)

__all__ = ["RunClaim", "claim_run", "error_from_record", "run_digest"]

log = logging.getLogger(__name__)


def run_digest(request: dict[str, Any], tool: str | None,
               tool_options: dict[str, Any] | None) -> str:
    """The request hash every entry point stores for a key (missing options == {})."""
    return canonical_request_hash(
        {"request": request, "tool": tool, "tool_options": dict(tool_options or {})})


class RunClaim:
    """This process owns ``key``: finish it with ``succeeded``/``failed``/``abandoned``."""

    def __init__(self, store: IdempotencyStore, key: str, digest: str, ttl_s: float) -> None:
        self.store = store
        self.key = key
        self.digest = digest
        self.ttl_s = ttl_s

    async def finish(self, output: OrchestrationOutput) -> None:
        """Store a succeeded/partial output as the answer; a failed one is shown to the
        callers waiting on this run, never replayed to later ones."""
        if output.status == "failed":
            await self.store.fail(self.key, json.dumps(
                {"output": output.model_dump(mode="json")}))
        else:
            await self.store.complete(self.key, self.digest, output.model_dump_json(),
                                      ttl_s=self.ttl_s)

    async def raised(self, exc: BaseException) -> None:
        """The run raised: a classified error (ours) is shared with the waiters; a crash or a
        cancellation just frees the key, so one waiter runs the request again."""
        if isinstance(exc, OrchestratorError):
            await self.store.fail(self.key, json.dumps({"error": exc.to_dict()}, default=str))
        else:
            await self.store.release(self.key)


async def claim_run(store: IdempotencyStore, cfg: OrchestrationConfig,
                    reliability: ReliabilityConfig, tool: str | None,
                    request: dict[str, Any], tool_options: dict[str, Any] | None,
                    ) -> tuple[RunClaim | None, OrchestrationOutput | None]:
    """Claim ``cfg.idempotency_key`` for this request.

    Returns ``(claim, None)`` when the caller must run it, ``(None, output)`` to replay an
    earlier (or waited-for) output. Raises ConflictError for another request under the key,
    the waited-for run's classified error, or TimeoutError when the wait ran out.
    """
    assert cfg.idempotency_key
    key = scoped_key(cfg.idempotency_key, tool or "planned")
    digest = run_digest(request, tool, tool_options)
    wait_s = reliability.idempotency_wait_s
    if cfg.timeout_ms:  # a waiter never waits longer than its own time budget
        wait_s = min(wait_s, cfg.timeout_ms / 1000)
    try:
        stored = await store.claim(key, digest, ttl_s=reliability.idempotency_ttl_s,
                                   wait_timeout_s=wait_s,
                                   lease_s=reliability.idempotency_lease_s,
                                   heartbeat_s=reliability.idempotency_heartbeat_s)
    except SharedFailure as failed:
        return None, _shared_failure(failed)
    if stored is None:
        return RunClaim(store, key, digest, reliability.idempotency_ttl_s), None
    out = OrchestrationOutput.model_validate_json(stored)
    out.metadata["idempotent_replay"] = True
    return None, out


def _shared_failure(failed: SharedFailure) -> OrchestrationOutput:
    """The failed output the owner recorded, or raise the error it raised."""
    try:
        record = json.loads(failed.failure_json or "{}")
    except ValueError:
        record = {}
    if "output" in record:
        out = OrchestrationOutput.model_validate(record["output"])
        out.metadata.update({"idempotent_replay": True, "shared_failure": True})
        return out
    raise error_from_record(record.get("error") or {}, failed.key)


def error_from_record(info: dict[str, Any], key: str) -> OrchestratorError:
    """Rebuild the owner's classified error from its ``to_dict()`` (type, category, status)."""
    message = str(info.get("message") or f"the run holding idempotency key {key!r} failed")
    kind = info.get("type")
    error: OrchestratorError
    if kind == "BudgetExceeded" and "budget_type" in info:
        error = BudgetExceeded(str(info["budget_type"]), float(info.get("limit") or 0),
                               float(info.get("actual") or 0), message)
    elif "category" in info:
        error = ProviderError(message, category=str(info["category"]),
                              provider=info.get("provider"),
                              status_code=info.get("status_code"),
                              retry_after=info.get("retry_after"),
                              is_retryable=bool(info.get("is_retryable")))
    elif kind == "ToolExecutionError":
        error = ToolExecutionError(message, is_retryable=bool(info.get("is_retryable")))
    else:
        error = OrchestratorError(message)
        if info.get("code"):
            error.code = str(info["code"])
    error.shared_failure = True  # type: ignore[attr-defined]
    error.original_type = kind  # type: ignore[attr-defined]
    return error
