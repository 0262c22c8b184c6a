#!/usr/bin/env bash
# What `make e2e` needs beyond `.[dev]`: Debian's chromium and Playwright for Python.
# Idempotent and quiet when both are present. Never runs `playwright install`: that downloads
# browsers from the network; the e2e tests drive /usr/bin/chromium instead.
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

if [ ! -x /usr/bin/chromium ]; then
    echo "install-e2e: installing chromium (apt-get)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if ! "$PY" -c "import playwright.sync_api" >/dev/null 2>&1; then
    echo "install-e2e: installing playwright (pip; the e2e extra of pyproject.toml)"
    "$PY" -m pip install -q 'playwright>=1.40'
fi
