#!/usr/bin/env bash
# The paper's baseline: the same GRPO run with the perception weight at 0 (accuracy, format and
# repetition penalty only). Takes the same environment and overrides as run_qwen25vl_7b.sh.
# No judge is needed: JUDGE_MODE defaults to the offline lexical judge, whose perception score is
# logged but not rewarded. Set JUDGE_MODE=external to log the LLM judge's perception score instead
# (same judge as the main run, so the two runs' perception curves compare).
set -euo pipefail
PERCEPTION_WEIGHT=0
JUDGE_MODE="${JUDGE_MODE:-lexical}"
EXPERIMENT_NAME="${EXPERIMENT_NAME:-qwen25vl7b_geo3k_acc_only}"
# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
pv_train "$@"
