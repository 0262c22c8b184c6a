"""tasks/eager.py bookkeeping: which replicates go early, and adoption only on exact inputs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from steer_llm_sdk.tasks.eager import EagerCall, discard_eager_calls, first_wave, take_eager_call

from steer_llm_sdk.config import OrchestrationConfig
from steer_tools.bundle import BundleTool


class Echo(BundleTool):
    name = "echo"

    async def run_replicate(self, request, seed, context):
        return seed


def test_first_wave_follows_early_stop_parallelism_seeds_and_budgets():
    cfg = OrchestrationConfig(max_parallel=3)
    assert first_wave(Echo(), {"k": 5, "early_stop": True}, cfg, {}) == [("r1", 1), ("r2", 2)]
    assert first_wave(Echo(), {"k": 5, "early_stop": False}, cfg, {}) == [
        ("r1", 1), ("r2", 2), ("r3", 3)]
    assert first_wave(Echo(), {"k": 2, "seeds": [7, 9], "max_parallel": 1}, cfg, {}) == [
        ("r1", 7)]
    assert first_wave(Echo(), {"k": 3}, cfg, {"tokens": 0}) == []
    assert first_wave(Echo(), {"k": 99}, cfg, {}) == []  # invalid: the flow reports it


async def test_adoption_needs_identical_inputs_and_a_mismatch_cancels_the_call():
    async def pending() -> tuple[int, float]:
        await asyncio.sleep(30)
        return 1, 0.0

    def call() -> EagerCall:
        return EagerCall("echo", 1, {"q": 1}, {"k": 2}, 0.0, asyncio.ensure_future(pending()))

    session = SimpleNamespace(eager={"r1": call()})
    adopted = take_eager_call(session, "echo", "r1", 1, {"q": 1}, {"k": 2})
    assert adopted is not None and session.eager == {}
    assert take_eager_call(session, "echo", "r1", 1, {"q": 1}, {"k": 2}) is None  # only once
    adopted.task.cancel()

    stale = session.eager["r1"] = call()
    assert take_eager_call(session, "echo", "r1", 1, {"q": 2}, {"k": 2}) is None
    await asyncio.sleep(0)
    assert stale.task.cancelled()

    leftover = session.eager["r2"] = call()
    await discard_eager_calls(session)
    assert leftover.task.cancelled() and session.eager == {}
