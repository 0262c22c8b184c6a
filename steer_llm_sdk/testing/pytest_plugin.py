"""Pytest plugin: ``pytest_plugins = ["steer_llm_sdk.testing.pytest_plugin"]``.

One simulator per session keeps the suite fast (start-up is cheap, but hundreds of tests add
up) and faults are chosen per request, so sharing is safe; call ``llm_simulator.reset()`` in a
test that asserts on request counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from steer_llm_sdk.testing.server import SimulatorServer


@pytest.fixture(scope="session")
def llm_simulator() -> Iterator[SimulatorServer]:
    """A running :class:`SimulatorServer` on a free 127.0.0.1 port for the whole session."""
    with SimulatorServer() as sim:
        yield sim
