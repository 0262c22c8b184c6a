"""No zombies: the flow run a crashed owner left in Running ends up Crashed.

When a process dies mid-run (``kill -9``, OOM, a lost host) its flow run stays Running in
Prefect forever: nothing is left to report a final state. The idempotency store knows which
run held a key (every owner records its flow run id, ``IdempotencyStore.annotate``), so the
owner that takes the key over after the lease expired marks that run Crashed. The server-side
mechanism for runs nobody re-claims (flow-run heartbeats + an automation) is described in
docs/durability.md.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from prefect.client.orchestration import get_client
from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import Crashed

logger = logging.getLogger("steer_llm_sdk.flows")


async def crash_orphaned_run(flow_run_id: str, key: str) -> bool:
    """Mark ``flow_run_id`` Crashed unless it already ended; True if it was changed."""
    try:
        run_id = uuid.UUID(flow_run_id)
    except ValueError:
        return False
    try:
        async with get_client() as client:
            run = await client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final():
                return False
            await client.set_flow_run_state(run_id, Crashed(message=(
                f"its process stopped renewing idempotency key {key!r} (crashed or killed); "
                "another run took the key over and resumed from its finished replicates")),
                force=True)
    except Exception as exc:  # cleanup only: never fail the run that took over
        logger.warning("could not mark orphaned flow run %s Crashed: %r", flow_run_id, exc)
        return False
    logger.info("flow run %s orphaned by a crashed owner of %r marked Crashed",
                flow_run_id, key)
    return True


async def track_claim(claim: Any) -> None:
    """Record this flow run as the holder of ``claim``'s key; crash the run it took over."""
    own_id = str(runtime_flow_run.id) if runtime_flow_run.id else None
    if own_id is None:
        return
    try:
        await claim.store.annotate(claim.key, own_id)
    except Exception as exc:
        logger.warning("could not record flow run %s on idempotency key %r: %r", own_id,
                       claim.key, exc)
    previous = claim.store.taken_over_run(claim.key)
    if previous and previous != own_id:  # a Prefect retry of the same run is not an orphan
        await crash_orphaned_run(previous, claim.key)
