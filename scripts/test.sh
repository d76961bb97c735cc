#!/usr/bin/env bash
# Set up (if needed) and run every check: ruff, then the whole test suite. .ci/run calls this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# The engine environment was just built: its tests must run, never skip.
export PV_REQUIRE_ENGINE=1
.venv/bin/ruff check .
# The declared layers ([tool.importlinter] in pyproject.toml): no module imports a layer above its own.
.venv/bin/lint-imports
# The documentation site: the generated pages (configuration, CLI) match the code, then a strict build
# (a broken link, a missing page or a page left out of the nav fails). Output in site/ (gitignored).
.venv/bin/python scripts/gen_docs.py --check
# (No --quiet: mkdocs 1.6 then drops the warnings that --strict counts, and a broken link passes.)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict
.venv/bin/python -m pytest -q "$@"
