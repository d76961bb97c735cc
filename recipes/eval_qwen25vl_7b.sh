#!/usr/bin/env bash
# Evaluate a model or a trained checkpoint on the paper's benchmarks with verl's own validation
# (trainer.val_only=True): greedy, one sample, 4096 new tokens, the training instruction and image
# pixel range, writing trainer.validation_data_dir dumps that perception_verl.evaluation.score reads.
#
#   python data_prep/build_benchmarks.py --out-dir ~/data/perception_eval     # once
#   bash recipes/eval_qwen25vl_7b.sh                                          # the base model
#   CHECKPOINT=checkpoints/perception_verl/qwen25vl7b_geo3k_perception/global_step_275 \
#       bash recipes/eval_qwen25vl_7b.sh                                      # a trained checkpoint
#   DRY_RUN=1 bash recipes/eval_qwen25vl_7b.sh                                # check it on CPU
#   python -m perception_verl.evaluation.score --dump "$EVAL_OUT" --data ... --out scored/
#
# Environment (defaults below and in common.sh): MODEL_PATH (hub id or HF folder; with CHECKPOINT
# the base model the checkpoint was trained from), CHECKPOINT (a verl global_step_N folder),
# EVAL_DIR, EVAL_FILES (comma list), EVAL_OUT (the dump folder), NNODES, N_GPUS_PER_NODE,
# ROLLOUT_TP, ROLLOUT_GPU_MEMORY, EXPERIMENT_NAME, LOGGER, ENTRY_MODULE, PYTHON, DRY_RUN.
# Extra arguments are hydra overrides appended last (they win).
set -euo pipefail
# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pv_eval() {
    EXPERIMENT_NAME="${EXPERIMENT_NAME:-eval_qwen25vl7b}"
    # No perception judge is needed to generate (the table is scored offline); set before pv_defaults,
    # whose default (external) would otherwise win.
    JUDGE_MODE="${JUDGE_MODE:-lexical}"
    pv_defaults
    EVAL_DIR="${EVAL_DIR:-$HOME/data/perception_eval}"
    EVAL_FILES="${EVAL_FILES:-$EVAL_DIR/mathvista.parquet,$EVAL_DIR/mathverse.parquet,$EVAL_DIR/mathvision.parquet,$EVAL_DIR/wemath.parquet}"
    EVAL_OUT="${EVAL_OUT:-$PV_REPO_DIR/eval_out/$EXPERIMENT_NAME}"
    # verl builds a training dataloader even for val_only: point it at the first benchmark file.
    TRAIN_FILE="${EVAL_FILES%%,*}"
    TEST_FILE="[$EVAL_FILES]"
    pv_build_overrides || return $?
    PV_OVERRIDES+=(
        "data.val_files=[$EVAL_FILES]"
        trainer.val_only=True
        trainer.val_before_train=True
        "trainer.validation_data_dir=$EVAL_OUT"
        trainer.total_epochs=1
        # Greedy, one sample, 4096 new tokens (already the training recipe's validation settings).
        actor_rollout_ref.rollout.val_kwargs.do_sample=False
        actor_rollout_ref.rollout.val_kwargs.temperature=0
        actor_rollout_ref.rollout.val_kwargs.n=1
        data.max_response_length=4096
        # The dump names each row (eval_id, eval_benchmark) so the scorer can join it back.
        reward.reward_manager.source=importlib
        reward.reward_manager.module.path=pkg://perception_verl.evaluation.reward_manager
        reward.reward_manager.name=EvalRewardManager
    )
    if [[ -n "${CHECKPOINT:-}" ]]; then
        PV_OVERRIDES+=(trainer.resume_mode=resume_path "trainer.resume_from_path=$CHECKPOINT")
    else
        # resume_mode=auto would silently load the newest checkpoint of trainer.default_local_dir.
        PV_OVERRIDES+=(trainer.resume_mode=disable)
    fi
    local python
    python="$(pv_python)"
    local command=("$python" -m "$ENTRY_MODULE" "${PV_OVERRIDES[@]}" "$@")
    if [[ "${DRY_RUN:-0}" == "1" ]]; then
        printf '# DRY_RUN=1: the command that would run:\n'
        pv_print_command "${command[@]}"
        printf '\n'
        "$python" -m perception_verl.evaluation.dryrun "${PV_OVERRIDES[@]}" "$@"
        return $?
    fi
    pv_print_command "${command[@]}"
    export PYTHONUNBUFFERED=1
    exec "${command[@]}"
}

pv_eval "$@"
