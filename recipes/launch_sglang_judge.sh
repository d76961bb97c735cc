#!/usr/bin/env bash
# Serve the perception judge with SGLang, wait until it is healthy, print the JUDGE_URL to train with.
#
#   bash recipes/launch_sglang_judge.sh                 # Qwen2.5-32B-Instruct-AWQ on GPU 0, port 30000
#   CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 DP=8 bash recipes/launch_sglang_judge.sh   # the paper's 8 judge GPUs
#   DRY_RUN=1 bash recipes/launch_sglang_judge.sh       # print the command only
#
# Environment: JUDGE_MODEL (model path or hub id), SERVED_MODEL_NAME (default JUDGE_MODEL; the
# recipes' JUDGE_MODEL must match it), HOST, PORT, TP (tensor parallel size), DP (data-parallel
# replicas behind one port), MEM_FRACTION (SGLang --mem-fraction-static), WAIT_S (health wait),
# LOG_FILE, DETACH=1 (return once healthy and leave the server running), PYTHON.
# Extra arguments go to sglang.launch_server unchanged.
#
# Prefix caching: SGLang's radix cache is on by default and is what makes the judge cheap here (the
# judge prompt puts instructions, examples and annotations before the response, so the 8 rollouts
# of a problem share a long prefix); this script never passes --disable-radix-cache.
# --enable-cache-report: SGLang reports usage.prompt_tokens_details.cached_tokens only with it (else
# null), so the judge's cached-token counts (reward/judge_cached_tokens/*) come from the server.
# --enable-metrics: Prometheus counters at /metrics (sglang:prompt_tokens_total, sglang:cached_tokens_total,
# queue lengths, latencies). /health on SGLang is /health_generate: a one-token generation, 503 when the
# server cannot answer within SGLANG_HEALTH_CHECK_TIMEOUT (20 s), e.g. while it starts or is swamped.
set -euo pipefail
# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

JUDGE_MODEL="${JUDGE_MODEL:-Qwen/Qwen2.5-32B-Instruct-AWQ}"
SERVED_MODEL_NAME="${SERVED_MODEL_NAME:-$JUDGE_MODEL}"
HOST="${HOST:-0.0.0.0}"
PORT="${PORT:-30000}"
TP="${TP:-1}"
DP="${DP:-1}"
MEM_FRACTION="${MEM_FRACTION:-0.85}"
WAIT_S="${WAIT_S:-1800}"
LOG_FILE="${LOG_FILE:-sglang_judge_${PORT}.log}"

PYTHON_BIN="$(pv_python)"
COMMAND=(
    "$PYTHON_BIN" -m sglang.launch_server
    --model-path "$JUDGE_MODEL"
    --served-model-name "$SERVED_MODEL_NAME"
    --host "$HOST"
    --port "$PORT"
    --tp-size "$TP"
    --dp-size "$DP"
    --mem-fraction-static "$MEM_FRACTION"
    --enable-cache-report
    --enable-metrics
    "$@"
)

if [[ "${DRY_RUN:-0}" == "1" ]]; then
    pv_print_command "${COMMAND[@]}"
    exit 0
fi

if [[ "$HOST" == "0.0.0.0" ]]; then
    PUBLIC_HOST="$(hostname -f 2>/dev/null || hostname)"
    PROBE_HOST=127.0.0.1
else
    PUBLIC_HOST="$HOST"
    PROBE_HOST="$HOST"
fi
URL="http://${PUBLIC_HOST}:${PORT}"

pv_print_command "${COMMAND[@]}"
printf 'logging to %s; waiting up to %ss for %s/health\n' "$LOG_FILE" "$WAIT_S" "http://${PROBE_HOST}:${PORT}"
if [[ "${DETACH:-0}" == "1" ]]; then
    nohup "${COMMAND[@]}" >"$LOG_FILE" 2>&1 &
else
    "${COMMAND[@]}" >"$LOG_FILE" 2>&1 &
fi
SERVER_PID=$!

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}
trap stop_server INT TERM

waited=0
until pv_http_ok "http://${PROBE_HOST}:${PORT}/health"; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        printf 'the judge server exited before it was healthy; last lines of %s:\n' "$LOG_FILE" >&2
        tail -n 40 "$LOG_FILE" >&2 || true
        exit 1
    fi
    if ((waited >= WAIT_S)); then
        printf 'the judge server was not healthy after %ss; stopping it (log: %s)\n' "$WAIT_S" "$LOG_FILE" >&2
        stop_server
        exit 1
    fi
    sleep 5
    waited=$((waited + 5))
done

printf '\njudge ready: %s serves %s (pid %s)\n' "$URL" "$SERVED_MODEL_NAME" "$SERVER_PID"
printf 'train with:\n  JUDGE_URL=%s JUDGE_MODEL=%s bash recipes/run_qwen25vl_7b.sh\n' "$URL" "$SERVED_MODEL_NAME"
printf '(several judge servers: JUDGE_URL=http://host1:%s,http://host2:%s)\n' "$PORT" "$PORT"

if [[ "${DETACH:-0}" == "1" ]]; then
    trap - INT TERM
    printf 'detached; stop it with: kill %s\n' "$SERVER_PID"
    exit 0
fi
printf 'serving in the foreground; Ctrl-C stops the judge\n'
wait "$SERVER_PID"
