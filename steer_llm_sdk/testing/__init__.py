"""Test doubles shipped with the SDK: an OpenAI-compatible LLM simulator with fault injection.

The simulator replaces only the *model*: the real ``openai`` client, HTTP, retries and circuit
breakers run unchanged against it. Imports here are stdlib-only so tests that use it stay fast.

    from steer_llm_sdk.testing import SimulatorServer

    with SimulatorServer() as sim:
        client = OpenAI(base_url=sim.base_url, api_key="sk-test")
        client.chat.completions.create(model="gpt-4o-mini+fail=2:503", messages=[...], seed=1)
"""

from steer_llm_sdk.testing.faults import FaultSpec, FaultSpecError
from steer_llm_sdk.testing.runner import run_simulator
from steer_llm_sdk.testing.server import SimulatorServer
from steer_llm_sdk.testing.stats import RequestRecord, SimulatorStats

__all__ = [
    "FaultSpec",
    "FaultSpecError",
    "RequestRecord",
    "SimulatorServer",
    "SimulatorStats",
    "run_simulator",
]
