"""The session's fleet (tests/cluster/fleet.py): started once, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.fleet import Cluster, start_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with start_cluster(workers=2, shared_breakers=True) as fleet:
        yield fleet
