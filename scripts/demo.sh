#!/usr/bin/env bash
# Set up (if needed) and run the main job on its embedded default, on CPU: see docs/getting-started.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh main
exec bash recipes/smoke_cpu.sh "$@"
