"""``timeout_ms`` and cancellation for in-process runs, from the ``run()`` call on.

The flow enforces ``timeout_ms`` itself, but only once it runs: the embedded server's start
(6-13 s in a fresh process) and Prefect's flow-run creation came first and were not bounded,
and cancelling ``run()`` waited for them. Here the whole flow call (start-up included) is one
task the caller waits on with the run's deadline: when it passes, or when the caller cancels,
the task is cancelled (Prefect marks the flow run Crashed, in-flight provider calls are
cancelled with it) and the caller gets control back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.flows.orchestrate import time_exceeded
from steer_llm_sdk.flows.partial import attach_partial
from steer_llm_sdk.tasks.runtime import RunSession

# The flow's own timeout fires at the deadline and builds the partial output itself; this
# much later the caller stops waiting for it.
GRACE_S = 0.25
# After cancelling, how long to let Prefect record the flow run's final state.
CANCEL_WAIT_S = 0.6


async def _stop(flow_call: asyncio.Future[Any]) -> None:
    flow_call.cancel()
    with contextlib.suppress(asyncio.CancelledError):  # cancelled again: stop waiting
        await asyncio.wait({flow_call}, timeout=CANCEL_WAIT_S)
    if flow_call.done() and not flow_call.cancelled():
        flow_call.exception()  # retrieved: a crash while cancelling is not "never retrieved"


async def bounded(flow_call: asyncio.Future[Any], session: RunSession,
                  cfg: OrchestrationConfig) -> Any:
    """The flow call's result, or ``BudgetExceeded("time")`` (with the finished replicates)
    once ``timeout_ms`` has passed since ``run()`` was called; cancellation propagates."""
    deadline = session.deadline
    timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0) + GRACE_S
    try:
        done, _ = await asyncio.wait({flow_call}, timeout=timeout)
    except asyncio.CancelledError:
        await _stop(flow_call)
        raise
    if done:
        return flow_call.result()
    await _stop(flow_call)
    if flow_call.done() and not flow_call.cancelled() and flow_call.exception() is None:
        return flow_call.result()  # it finished (e.g. with its own time stop) meanwhile
    limit = float(cfg.timeout_ms or 0)
    actual = round((time.monotonic() - session.started) * 1000, 3)
    raise attach_partial(time_exceeded(limit, actual), session, cfg)
