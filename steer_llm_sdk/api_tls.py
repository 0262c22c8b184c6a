"""Cheap Prefect API clients for plain-http API URLs.

Every Prefect client builds ``ssl.create_default_context(cafile=<CA bundle>)``, parsing the
whole certifi bundle (~150 certificates, ~20 ms CPU), even when the API URL is ``http://``
and TLS is never used. A flow run builds several clients, so with 20 concurrent
orchestrations this was a third of the process's CPU (docs/performance.md).

For an ``http://`` API URL (or Prefect's embedded server, always http://127.0.0.1), runs use a
one-certificate CA file: the context is built in microseconds and, the URL being plain http,
never verifies anything (whatever CA file was configured, e.g. through SSL_CERT_FILE, would
not have been used either). An ``https://`` API URL is left alone, so TLS verification is
never weakened. The override relies on Prefect's settings having ``api.ssl_cert_file`` and on
``SettingsContext(profile=, settings=)``; without them runs keep Prefect's settings
(steer_llm_sdk.prefect_patches logs which optimisation is off). Opt out with
STEER_PREFECT_PATCHES=0 (all Prefect patches) or STEER_FAST_HTTP_API_CLIENTS=0.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from steer_llm_sdk.prefect_patches import allowed, patch_off

NAME = "fast-http-api-clients"
CA_SETTING = "ssl_cert_file"  # the field of Prefect's API settings the override replaces

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", re.S)


def _one_certificate_file() -> Path:
    import certifi

    from steer_llm_sdk.reliability.idempotency import steer_home

    target = steer_home() / "http-api-ca.pem"
    if not target.exists():
        first = _PEM.search(Path(certifi.where()).read_text())
        if first is None:
            raise RuntimeError("certifi bundle has no certificate")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(first.group(0))
        tmp.replace(target)
    return target


def _applies() -> bool:
    from prefect.settings import PREFECT_API_URL

    if not allowed(NAME, "STEER_FAST_HTTP_API_CLIENTS"):
        return False
    url = PREFECT_API_URL.value()
    return url is None or str(url).startswith("http://")


_DERIVED: tuple[object, str, object] | None = None


@contextlib.contextmanager
def fast_http_api_clients() -> Iterator[None]:
    """The override is derived once per base settings object: ``temporary_settings`` would
    re-validate every Prefect setting on each run (~36 ms of CPU, measured)."""
    global _DERIVED
    if not _applies():
        yield
        return
    from prefect.context import SettingsContext

    current = SettingsContext.get()
    if current is None:  # outside Prefect's root context: nothing to override
        yield
        return
    if not _settings_as_expected(current):
        yield
        return
    ca = str(_one_certificate_file())
    derived = _DERIVED
    if derived is None or derived[0] is not current.settings or derived[1] != ca:
        # model_copy: one field changes; copy_with_update re-validates every setting (50 ms)
        base = current.settings
        api = base.api.model_copy(update={CA_SETTING: ca})
        updated = base.model_copy(update={"api": api})
        derived = _DERIVED = (current.settings, ca, updated)
    with SettingsContext(profile=current.profile, settings=derived[2]):
        yield


def _settings_as_expected(current: Any) -> bool:
    api = getattr(getattr(current, "settings", None), "api", None)
    fields = getattr(type(api), "model_fields", {})
    if CA_SETTING not in fields or not hasattr(current, "profile"):
        patch_off(NAME, f"Prefect's API settings have no {CA_SETTING!r} field or its "
                        "SettingsContext no profile")
        return False
    return True
