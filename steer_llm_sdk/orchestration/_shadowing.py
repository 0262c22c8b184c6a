"""Guard against a user's own ``steer_tools.py`` shadowing the tool-contract package.

Flows, tasks, planner and deployments install as subpackages of ``steer_llm_sdk``, so a
user's ``tasks.py`` or ``flows/`` cannot shadow them. ``steer_tools`` is the one other
top-level name we install; importing someone else's module under it would fail far from the
cause, so we check once, at import, and name the shadowing file and the fix.
"""

from __future__ import annotations

import importlib
from pathlib import Path


def check_top_level_packages() -> None:
    module = importlib.import_module("steer_tools")
    location = Path(getattr(module, "__file__", "") or "").resolve()
    if location.name != "__init__.py" or not (location.parent / "registry.py").exists():
        raise ImportError(
            "steer-llm-sdk needs its own top-level package 'steer_tools', but 'steer_tools' "
            f"resolves to {location}. Rename your module (e.g. steer_tools.py -> "
            "my_steer_tools.py) or run from another directory so it does not shadow the SDK's "
            "package."
        )
