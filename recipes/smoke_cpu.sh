#!/usr/bin/env bash
# See it work without a GPU: score sample responses of five quality levels with the perception
# reward inside verl's own reward loop (Ray, CPU) and print every reward component and the GRPO
# advantages verl computes. No downloads, no judge server (the offline lexical judge), about a minute.
#
#   bash recipes/smoke_cpu.sh
#   bash recipes/smoke_cpu.sh --judge-url http://127.0.0.1:30000 --judge-model Qwen/Qwen2.5-32B-Instruct-AWQ
#   bash recipes/smoke_cpu.sh --judge-url http://127.0.0.1:8000 --judge-model NAME --constrained  # vLLM or SGLang
#   bash recipes/smoke_cpu.sh --out-dir ./smoke   # keep the sample parquet and tokenizer
#
# Arguments go to python -m perception_verl_demo.smoke (see --help). PYTHON picks the interpreter.
set -euo pipefail
# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
exec "$(pv_python)" -m perception_verl_demo.smoke "$@"
