"""The floor job installs what pyproject.toml promises (scripts/floor_constraints.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("floor_constraints",
                                                  ROOT / "scripts" / "floor_constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_constraints_are_generated_from_pyproject():
    expected = (ROOT / "ci" / "constraints-floor.txt").read_text()
    assert _script().render() == expected, (
        "ci/constraints-floor.txt is stale: run "
        "`python scripts/floor_constraints.py > ci/constraints-floor.txt`")


def test_every_declared_dependency_is_pinned_to_its_floor(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\ndependencies = ["prefect>=3.6.21,<3.10", "pydantic >= 2.10.1, <3"]\n'
        '[project.optional-dependencies]\ndev = ["psycopg[binary]>=3.1.4", "prefect>=3.6.21"]\n')
    text = _script().render(pyproject)
    assert "prefect==3.6.21\n" in text and "pydantic==2.10.1\n" in text
    assert "psycopg==3.1.4\n" in text
    assert "fastapi<0.137\n" in text  # the transitive pin Prefect < 3.9 needs


@pytest.mark.parametrize(("dependency", "message"), [
    ('"openai"', "has no '>=' floor"),
    ('"openai>=1.55.3", "openai>=1.60"', "two floors"),
])
def test_a_dependency_without_one_honest_floor_is_refused(tmp_path, dependency, message):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[project]\ndependencies = [{dependency}]\n")
    with pytest.raises(SystemExit, match=message):
        _script().render(pyproject)
