"""One switch and one log line for every place the SDK leans on a Prefect internal.

The SDK speeds Prefect up in five places that touch internals a Prefect minor release may
change without notice (docs/architecture.md, "Prefect internals"): the embedded server's
launch command, SQLite ``BEGIN IMMEDIATE``, one shared API client per loop, cheap SSL contexts
for http:// API URLs, and a FastAPI-free ``serialize_parameters``. Each site checks that the
internal still looks as expected before using it; when it does not, the site leaves Prefect's
own behaviour in place (slower, never broken) and calls :func:`patch_off`, which logs exactly
one DEBUG line per optimisation and process naming what is off and why.

``STEER_PREFECT_PATCHES=0`` switches every one of them off at once (Prefect's behaviour
throughout), e.g. to rule the SDK's shortcuts out when debugging a Prefect upgrade.
"""

from __future__ import annotations

import logging
import os

ENV_SWITCH = "STEER_PREFECT_PATCHES"

logger = logging.getLogger("steer_llm_sdk.prefect_patches")

_OFF: dict[str, str] = {}


def allowed(name: str, own_switch: str | None = None) -> bool:
    """Whether optimisation ``name`` may run: not when ``STEER_PREFECT_PATCHES=0`` or its own
    older opt-out variable (``own_switch``) is ``0``; then it is recorded as off."""
    for variable in (ENV_SWITCH, own_switch):
        if variable and os.environ.get(variable, "1") == "0":
            patch_off(name, f"{variable}=0")
            return False
    return True


def patch_off(name: str, reason: str) -> None:
    """Record that optimisation ``name`` is off; the first call per name logs one DEBUG line."""
    if name in _OFF:
        return
    _OFF[name] = reason
    logger.debug("Prefect optimisation %r is off (%s); using Prefect's own behaviour "
                 "(prefect %s)", name, reason, _prefect_version())


def disabled_patches() -> dict[str, str]:
    """Optimisations switched off in this process so far, with the reason for each."""
    return dict(_OFF)


def _prefect_version() -> str:
    try:
        import prefect

        return str(prefect.__version__)
    except Exception:  # noqa: BLE001 - only decorates a log line
        return "unknown"
