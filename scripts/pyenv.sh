#!/usr/bin/env bash
# Creates .venv with the test clients (pytest, the Python varlink package), once.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c "import varlink, pytest" 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check "pytest>=8" "varlink==31.0.0"
fi
