"""Guard against a user's own ``tasks.py`` / ``flows.py`` / ``planner.py`` shadowing ours.

The distribution installs generic top-level names; Celery projects, for one, have a
``tasks.py``. Importing the wrong module would fail far from the cause, so we check once,
at import, and name the shadowing file and the fix.
"""

from __future__ import annotations

import importlib
from pathlib import Path

_OURS = ("steer_tools", "planner", "tasks", "flows")
_MARKERS = {"steer_tools": "registry", "planner": "rule_based", "tasks": "runtime",
            "flows": "orchestrate"}


def check_top_level_packages() -> None:
    root = Path(__file__).resolve().parents[2]
    for name in _OURS:
        module = importlib.import_module(name)
        location = Path(getattr(module, "__file__", "") or "").resolve()
        marker = location.parent / f"{_MARKERS[name]}.py"
        if location.name != "__init__.py" or not marker.exists() or location.parent.parent != root:
            raise ImportError(
                f"steer-llm-sdk needs its own top-level package {name!r}, but {name!r} resolves "
                f"to {location}. Rename your module (e.g. {name}.py -> my_{name}.py) or run "
                "from another directory so it does not shadow the SDK's package."
            )
