#!/usr/bin/env bash
# Set up (if needed) and run every check: ruff, then the whole test suite. .ci/run calls this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# The engine environment was just built: its tests must run, never skip.
export PV_REQUIRE_ENGINE=1
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
