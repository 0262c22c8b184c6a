"""Every ```python block in docs/*.md is a complete program; run each one so the docs cannot rot.

Blocks whose info string says ``no-run`` (```` ```python no-run ````) are shown but not executed
(a Redis URL, a pytest module, a deployment). Each example runs with ``__name__ == "__main__"``
in a fresh namespace, inside the session's Prefect test harness, with process-wide state that
examples may touch (breakers, prices, environment variables) restored afterwards.

These are plain ``def`` tests on purpose: examples call ``asyncio.run``, which must not run
inside pytest-asyncio's session event loop.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXPECTED_DOCS = (
    "overview.md",
    "tool-development.md",
    "evidence-bundles.md",
    "providers.md",
    "planning-reliability.md",
    "architecture.md",
)
# A fence at the start of a line: ```python [flags]\n ... \n```
FENCE = re.compile(r"^```python([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def collect_examples() -> list[tuple[str, int, str]]:
    """(doc file name, line of the opening fence, source) for every runnable block."""
    examples = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if "no-run" in match.group(1).split():
                continue
            line = text.count("\n", 0, match.start()) + 1
            examples.append((path.name, line, match.group(2)))
    return examples


EXAMPLES = collect_examples()


def test_every_doc_exists_and_the_examples_were_found():
    missing = [name for name in EXPECTED_DOCS if not (DOCS / name).is_file()]
    assert not missing, f"docs missing: {missing}"
    assert len(EXAMPLES) >= 5, "expected runnable ```python blocks in docs/*.md"


@pytest.fixture
def restore_process_state(fresh_breakers):
    """Undo what an example may change process-wide: env vars, price overrides, breakers."""
    from steer_llm_sdk.providers import pricing

    environ = dict(os.environ)
    prices = dict(pricing._overrides)
    yield
    os.environ.clear()
    os.environ.update(environ)
    with pricing._lock:
        pricing._overrides.clear()
        pricing._overrides.update(prices)


@pytest.mark.parametrize(
    ("doc", "line", "source"),
    [pytest.param(*example, id=f"{example[0]}:{example[1]}") for example in EXAMPLES],
)
@pytest.mark.usefixtures("prefect_backend", "restore_process_state")
def test_doc_example_runs(doc: str, line: int, source: str) -> None:
    # Pad with newlines so tracebacks point at the line numbers of the markdown file.
    code = compile("\n" * line + source, str(DOCS / doc), "exec")
    namespace = {"__name__": "__main__", "__file__": str(DOCS / doc)}
    exec(code, namespace)  # noqa: S102 - executing our own documentation is the point
