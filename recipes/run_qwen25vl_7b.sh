#!/usr/bin/env bash
# Perception-R1 GRPO on Qwen2.5-VL-7B-Instruct with verl (FSDP actor, vLLM rollout) and the
# perception reward judged by an SGLang-served LLM. The paper's settings live in common.sh.
#
#   bash recipes/launch_sglang_judge.sh            # the judge (own GPUs), prints JUDGE_URL
#   JUDGE_URL=http://judge-host:30000 bash recipes/run_qwen25vl_7b.sh
#   DRY_RUN=1 bash recipes/run_qwen25vl_7b.sh      # print the command and check everything, CPU only
#   JUDGE_MODE=verl bash recipes/run_qwen25vl_7b.sh  # verl launches the judge on JUDGE_GPUS GPUs
#
# Environment (defaults in common.sh): MODEL_PATH, TRAIN_FILE, TEST_FILE (or DATA_DIR),
# NNODES, N_GPUS_PER_NODE, ROLLOUT_TP, JUDGE_MODE=external|verl|lexical, JUDGE_URL (comma list),
# JUDGE_MODEL, JUDGE_GPUS, JUDGE_TP, JUDGE_DTYPE, PERCEPTION_WEIGHT, PROJECT_NAME, EXPERIMENT_NAME,
# LOGGER (comma list, e.g. console,wandb), TOTAL_EPOCHS, ENTRY_MODULE, PYTHON, DRY_RUN.
# Extra arguments are hydra overrides appended last (they win), e.g. trainer.total_epochs=1.
set -euo pipefail
# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
pv_train "$@"
