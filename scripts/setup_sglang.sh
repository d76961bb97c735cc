#!/usr/bin/env bash
# The SGLang judge environment (.venv-sglang): sglang 0.5.23 serving on CPU, for the real-engine tests
# (tests/engine, beside the vLLM server of .venv-engine) and benchmarks/engine_judge.py --server sglang.
# SGLang pins torch 2.14.1 and transformers 5.19.0, so it shares neither .venv (verl) nor .venv-engine.
#
# - torch 2.14.1 + torchvision 0.29.1 (this machine's disk; PyPI's CUDA builds, which run on CPU; SGLang
#   imports torchvision when it loads a model config);
# - sglang --no-deps (its metadata asks for CUDA-only packages: flashinfer, sglang-kernel, deep-gemm, ...),
#   then the runtime dependencies its CPU serving path imports, at the versions it pins;
# - plugins/sglang-cpu-kernels: the `sgl_kernel` module SGLang's CPU engine imports (a pure-torch
#   stand-in; the real CPU kernels exist only as a source build), active only under SGLANG_USE_CPU_ENGINE=1.
# Registries and this machine's disk only. Idempotent: rebuilt only when this script, the constraints or
# the kernel package's pyproject change.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=.venv-sglang
constraints=.ci/sglang-constraints.txt
stamp="$(cat scripts/setup_sglang.sh "$constraints" plugins/sglang-cpu-kernels/pyproject.toml \
    | sha256sum | cut -d' ' -f1)"
if [[ -f $venv/.pv-stamp && "$(cat $venv/.pv-stamp)" == "$stamp" ]]; then
    echo "[setup] $venv is up to date"
    exit 0
fi
echo "[setup] building $venv (about 1-4 minutes)"
rm -f $venv/.pv-stamp
[[ -x $venv/bin/python ]] || python3 -m venv $venv
# uv installs into the venv by hard links from its cache (UV_CACHE_DIR, default ~/.cache/uv): measured
# here 60 s against pip's 228 s for the same set, and a rebuild from a warm cache adds ~80 MB of disk
# instead of 5.7 GB. uv reads no pip configuration: this machine's disk (find-links, local indexes, the
# torch cap) is named here, and best-match picks the pinned version from whichever index has it.
$venv/bin/pip install -q uv==0.13.9
uv=($venv/bin/uv pip install -q --python $venv/bin/python -c "$constraints"
    --find-links /opt/wheels --index-strategy unsafe-best-match)
for index in /opt/pypi/simple /opt/pypi-more/simple; do
    [[ -d $index ]] && uv+=(--extra-index-url "file://$index")
done
[[ -f /etc/xdg/pip/constraints.txt ]] && uv+=(-c /etc/xdg/pip/constraints.txt)
"${uv[@]}" torch torchvision
# What `python -m sglang.launch_server --device cpu` imports (found by serving the tiny judge model), with
# apache-tvm-ffi at sglang's pin (xgrammar alone would take a newer one).
"${uv[@]}" transformers tokenizers xgrammar apache-tvm-ffi openai fastapi uvicorn uvloop orjson pydantic \
    pyzmq psutil setproctitle requests aiohttp numpy pillow prometheus-client msgspec pybase64 \
    python-multipart partial-json-parser interegular einops tqdm packaging sentencepiece xxhash zstandard \
    ipython dill compressed-tensors gguf jsonschema soundfile
"${uv[@]}" --no-deps sglang -e ./plugins/sglang-cpu-kernels
SGLANG_USE_CPU_ENGINE=1 $venv/bin/python -W ignore -c \
    'import sglang.srt.entrypoints.http_server, sglang.srt.mem_cache.allocation, sgl_kernel, xgrammar'
printf '%s\n' "$stamp" > $venv/.pv-stamp
