# shellcheck shell=bash
# Shared by the recipes: the Python to use, printing a command, HTTP health probes, and the
# Perception-R1 GRPO run (verl main_ppo) built from environment variables.
# Source it; it defines variables and functions and runs nothing.

PV_RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PV_REPO_DIR="$(dirname "$PV_RECIPES_DIR")"

# The interpreter: $PYTHON, else this checkout's .venv, else python3 from PATH.
pv_python() {
    if [[ -n "${PYTHON:-}" ]]; then
        printf '%s\n' "$PYTHON"
    elif [[ -x "$PV_REPO_DIR/.venv/bin/python" ]]; then
        printf '%s\n' "$PV_REPO_DIR/.venv/bin/python"
    else
        printf '%s\n' python3
    fi
}

# Print a command so that it can be pasted back into a shell: one option or override per line.
pv_print_command() {
    local word out=""
    for word in "$@"; do
        if [[ -z "$out" ]]; then
            out="$(printf '%q' "$word")"
        elif [[ "$word" == --* || "$word" == *=* ]]; then
            out+="$(printf ' \\\n    %q' "$word")"
        else
            out+="$(printf ' %q' "$word")"
        fi
    done
    printf '%s\n' "$out"
}

# True when GET URL answers 2xx.
pv_http_ok() {
    local url="$1"
    if command -v curl >/dev/null 2>&1; then
        curl -sf -o /dev/null --max-time 5 "$url"
    else
        "$(pv_python)" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$url" \
            >/dev/null 2>&1
    fi
}

# Everything a user changes is one of these variables.
pv_defaults() {
    MODEL_PATH="${MODEL_PATH:-Qwen/Qwen2.5-VL-7B-Instruct}"
    DATA_DIR="${DATA_DIR:-$HOME/data/geometry3k_perception}"
    TRAIN_FILE="${TRAIN_FILE:-$DATA_DIR/train.parquet}"
    TEST_FILE="${TEST_FILE:-$DATA_DIR/test.parquet}"
    NNODES="${NNODES:-1}"
    N_GPUS_PER_NODE="${N_GPUS_PER_NODE:-8}"
    ROLLOUT_TP="${ROLLOUT_TP:-2}"
    ROLLOUT_GPU_MEMORY="${ROLLOUT_GPU_MEMORY:-0.6}"
    # external: a judge you serve (launch_sglang_judge.sh), at JUDGE_URL (comma list of replicas);
    # verl: verl launches the judge itself on JUDGE_GPUS GPUs of its own;
    # lexical: the offline word-overlap judge (no LLM; for plumbing checks only).
    JUDGE_MODE="${JUDGE_MODE:-external}"
    JUDGE_URL="${JUDGE_URL:-http://127.0.0.1:30000}"
    JUDGE_MODEL="${JUDGE_MODEL:-Qwen/Qwen2.5-32B-Instruct-AWQ}"
    # Bound (s) on waiting for a judge still loading, before verl starts and again in each reward
    # worker; 1800 covers a 32B judge started at the same time (launch_sglang_judge.sh waits as long).
    JUDGE_WAIT_S="${JUDGE_WAIT_S:-20}"
    JUDGE_NNODES="${JUDGE_NNODES:-1}"
    JUDGE_GPUS="${JUDGE_GPUS:-8}"
    JUDGE_TP="${JUDGE_TP:-1}"
    JUDGE_DTYPE="${JUDGE_DTYPE:-float16}"
    PERCEPTION_WEIGHT="${PERCEPTION_WEIGHT:-0.7}"
    PROJECT_NAME="${PROJECT_NAME:-perception_verl}"
    EXPERIMENT_NAME="${EXPERIMENT_NAME:-qwen25vl7b_geo3k_perception}"
    LOGGER="${LOGGER:-console}"
    TOTAL_EPOCHS="${TOTAL_EPOCHS:-25}"
    SAVE_FREQ="${SAVE_FREQ:-25}"
    TEST_FREQ="${TEST_FREQ:-5}"
    # verl's main_ppo wrapped to log every reward component each step (issue 11); set
    # ENTRY_MODULE=verl.trainer.main_ppo to run verl's entry point unchanged (same arguments).
    ENTRY_MODULE="${ENTRY_MODULE:-perception_verl.main_ppo}"
}

# Fill the array PV_OVERRIDES with the hydra overrides of the run.
pv_build_overrides() {
    PV_OVERRIDES=(
        # --- algorithm: GRPO, no KL anywhere (paper: no KL loss, no KL in reward)
        algorithm.adv_estimator=grpo
        algorithm.use_kl_in_reward=False
        actor_rollout_ref.actor.use_kl_loss=False
        # --- data: 128 prompts per step; prompt and response up to 4096 tokens each
        "data.train_files=$TRAIN_FILE"
        "data.val_files=$TEST_FILE"
        data.train_batch_size=128
        data.max_prompt_length=4096
        data.max_response_length=4096
        data.filter_overlong_prompts=True
        data.truncation=error
        data.image_key=images
        # Paper: image pixels 3136..1806336. verl has no global pixel key; these kwargs go to the
        # HF processor (dataset length filter, rollout) and to vLLM, which resize every image into
        # that range (qwen_vl_utils' own default range is 3136..12845056).
        +data.mm_processor_kwargs.min_pixels=3136
        +data.mm_processor_kwargs.max_pixels=1806336
        # --- policy model and optimizer
        "actor_rollout_ref.model.path=$MODEL_PATH"
        actor_rollout_ref.model.use_remove_padding=True
        actor_rollout_ref.model.enable_gradient_checkpointing=True
        actor_rollout_ref.actor.strategy=fsdp
        actor_rollout_ref.actor.optim.lr=1e-6
        actor_rollout_ref.actor.optim.weight_decay=1e-3
        # Paper: warm-up ratio 0.05; verl applies the ratio to the total number of training steps.
        actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0.05
        actor_rollout_ref.actor.optim.lr_scheduler_type=constant
        # Paper: gradient clip 1.0 (verl 0.9 reads optim.clip_grad; actor.grad_clip is its old name).
        actor_rollout_ref.actor.optim.clip_grad=1.0
        # Paper: global batch 128. verl counts ppo_mini_batch_size in prompts (x rollout.n inside),
        # so 128 prompts x 8 rollouts make one optimizer step per training step (on-policy).
        actor_rollout_ref.actor.ppo_mini_batch_size=128
        actor_rollout_ref.actor.ppo_epochs=1
        # Micro-batches by token count instead of a fixed sample count (8192 tokens per sample max).
        actor_rollout_ref.actor.use_dynamic_bsz=True
        actor_rollout_ref.actor.ppo_max_token_len_per_gpu=16384
        # Paper: PPO clip 0.2 low / 0.3 high (clip-higher) and dual-clip bound 3 for negative
        # advantages (verl's clip_ratio_c), no entropy bonus.
        actor_rollout_ref.actor.clip_ratio_low=0.2
        actor_rollout_ref.actor.clip_ratio_high=0.3
        actor_rollout_ref.actor.clip_ratio_c=3.0
        actor_rollout_ref.actor.entropy_coeff=0
        actor_rollout_ref.actor.loss_agg_mode=token-mean
        # Paper: full fine-tuning including the vision tower. verl 0.9.1 trains every parameter
        # unless told otherwise; the key is set for clarity.
        actor_rollout_ref.actor.freeze_vision_tower=False
        actor_rollout_ref.actor.fsdp_config.param_offload=False
        actor_rollout_ref.actor.fsdp_config.optimizer_offload=False
        # --- rollout: vLLM, 8 samples per prompt at temperature 1.0; greedy validation
        actor_rollout_ref.rollout.name=vllm
        actor_rollout_ref.rollout.n=8
        actor_rollout_ref.rollout.temperature=1.0
        actor_rollout_ref.rollout.top_p=1.0
        "actor_rollout_ref.rollout.tensor_model_parallel_size=$ROLLOUT_TP"
        "actor_rollout_ref.rollout.gpu_memory_utilization=$ROLLOUT_GPU_MEMORY"
        # vLLM >= 0.29 normalises image pixels inside Qwen2.5-VL with persistent buffers
        # (visual.input_norm); verl's default load_format=dummy randomises them and its weight sync
        # never sends them, so every image reaches the vision tower as ~0 (image-blind rollouts).
        # load_format=auto loads them from the checkpoint: right for every vLLM version, at the cost
        # of one checkpoint read at start. The trainer also stops at step 1 when rollout and actor
        # disagree (reward_kwargs.rollout_mismatch_max).
        actor_rollout_ref.rollout.load_format=auto
        actor_rollout_ref.rollout.log_prob_use_dynamic_bsz=True
        actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=32768
        actor_rollout_ref.rollout.val_kwargs.do_sample=False
        actor_rollout_ref.rollout.val_kwargs.temperature=0
        actor_rollout_ref.rollout.val_kwargs.n=1
        # --- reward: our manager, loaded by module path (no registry import needed in workers)
        reward.reward_manager.source=importlib
        reward.reward_manager.module.path=pkg://perception_verl.integration.manager
        reward.reward_manager.name=PerceptionRewardManager
        # Paper: r = 0.9 acc + 0.1 format + 0.7 perception + repetition penalty (n=20, max 2).
        "+reward.reward_kwargs.weights.perception=$PERCEPTION_WEIGHT"
        # --- trainer: 25 epochs (1,442 problems / 128 = 11 steps per epoch, 275 steps)
        "trainer.total_epochs=$TOTAL_EPOCHS"
        "trainer.nnodes=$NNODES"
        "trainer.n_gpus_per_node=$N_GPUS_PER_NODE"
        "trainer.project_name=$PROJECT_NAME"
        "trainer.experiment_name=$EXPERIMENT_NAME"
        "trainer.logger=[$LOGGER]"
        trainer.val_before_train=True
        "trainer.test_freq=$TEST_FREQ"
        "trainer.save_freq=$SAVE_FREQ"
        # A checkpoint with optimizer state is ~130 GB for a 7B model: keep the last two.
        trainer.max_actor_ckpt_to_keep=2
        trainer.critic_warmup=0
    )
    case "$JUDGE_MODE" in
        external)
            PV_OVERRIDES+=(
                +reward.reward_kwargs.judge=sglang
                "+reward.reward_kwargs.judge_urls=\"$JUDGE_URL\""
                "+reward.reward_kwargs.judge_model=\"$JUDGE_MODEL\""
                "+reward.reward_kwargs.health_timeout_s=$JUDGE_WAIT_S"
            )
            ;;
        verl)
            PV_OVERRIDES+=(
                +reward.reward_kwargs.judge=sglang
                # verl starts SGLang servers for the judge on a pool of its own GPUs and passes
                # their router address to our manager (reward_router_address).
                reward.reward_model.enable=True
                reward.reward_model.enable_resource_pool=True
                "reward.reward_model.nnodes=$JUDGE_NNODES"
                "reward.reward_model.n_gpus_per_node=$JUDGE_GPUS"
                "reward.reward_model.model_path=$JUDGE_MODEL"
                reward.reward_model.rollout.name=sglang
                "reward.reward_model.rollout.tensor_model_parallel_size=$JUDGE_TP"
                # AWQ checkpoints are float16; verl would otherwise ask SGLang for bfloat16.
                "reward.reward_model.rollout.dtype=$JUDGE_DTYPE"
                reward.reward_model.rollout.gpu_memory_utilization=0.85
                # The judge has its own GPUs: keep its KV cache (and radix prefix cache) warm.
                reward.reward_model.rollout.free_cache_engine=False
                # With a reward model enabled, verl calls the reward manager only when a custom
                # reward function is set; ours is a rule-only fallback the manager never calls.
                reward.custom_reward_function.path=pkg://perception_verl.integration.manager
                reward.custom_reward_function.name=compute_score
            )
            ;;
        lexical)
            PV_OVERRIDES+=(+reward.reward_kwargs.judge=lexical)
            ;;
        *)
            printf 'JUDGE_MODE must be external, verl or lexical; got %q\n' "$JUDGE_MODE" >&2
            return 2
            ;;
    esac
}

# The GRPO run: print the command; with DRY_RUN=1 check it instead of running it.
pv_train() {
    pv_defaults
    pv_build_overrides || return $?
    local python
    python="$(pv_python)"
    local command=("$python" -m "$ENTRY_MODULE" "${PV_OVERRIDES[@]}" "$@")
    if [[ "${DRY_RUN:-0}" == "1" ]]; then
        printf '# DRY_RUN=1: the command that would run:\n'
        pv_print_command "${command[@]}"
        printf '\n'
        if ! "$python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)' \
            "$ENTRY_MODULE" 2>/dev/null; then
            printf 'DRY RUN FAILED: entry point %s is not importable with %s\n' "$ENTRY_MODULE" "$python"
            return 1
        fi
        "$python" -m perception_verl.launch.dryrun "${PV_OVERRIDES[@]}" "$@"
        return $?
    fi
    pv_print_command "${command[@]}"
    # The judge must answer before verl loads anything (the reward workers check it again).
    if [[ "$JUDGE_MODE" == "external" ]]; then
        "$python" -m perception_verl.launch.preflight --judge-url "$JUDGE_URL" --judge-model "$JUDGE_MODEL" \
            --timeout-s "$JUDGE_WAIT_S" || return 1
    fi
    export PYTHONUNBUFFERED=1
    exec "${command[@]}"
}

# --- The tiny CPU twin (recipes/run_tiny_cpu.sh): the run above with only size and device settings
# changed. demo/perception_verl_demo/twin.py lists the keys it may change (SIZE_DEVICE_KEYS); a test
# fails when the composed configs differ anywhere else.
pv_twin_defaults() {
    TWIN_DIR="${TWIN_DIR:-${TMPDIR:-/tmp}/perception_verl_twin}"
    TWIN_STEPS="${TWIN_STEPS:-2}"
    MODEL_PATH="${MODEL_PATH:-$TWIN_DIR/model}"
    DATA_DIR="${DATA_DIR:-$TWIN_DIR/data}"
    N_GPUS_PER_NODE="${N_GPUS_PER_NODE:-1}"
    ROLLOUT_TP="${ROLLOUT_TP:-1}"
    JUDGE_MODE="${JUDGE_MODE:-lexical}"
    EXPERIMENT_NAME="${EXPERIMENT_NAME:-tiny_cpu_twin}"
    LOGGER="${LOGGER:-console,file}"
    TOTAL_EPOCHS="${TOTAL_EPOCHS:-$TWIN_STEPS}"
    SAVE_FREQ="${SAVE_FREQ:-1}"
    TEST_FREQ="${TEST_FREQ:--1}"
}

# Append the twin's size and device overrides to PV_OVERRIDES (they come last, so they win).
pv_twin_overrides() {
    PV_OVERRIDES+=(
        # --- size: 3 prompts x 4 rollouts per step, short prompts and responses
        data.train_batch_size=3
        data.max_prompt_length=512
        data.max_response_length=384
        data.dataloader_num_workers=0
        actor_rollout_ref.actor.ppo_mini_batch_size=3
        actor_rollout_ref.rollout.n=4
        actor_rollout_ref.actor.optim.lr=1e-4
        trainer.val_before_train=False
        "trainer.default_local_dir=$TWIN_DIR/checkpoints"
        "trainer.rollout_data_dir=$TWIN_DIR/rollouts"
        # --- device: CPU (verl_cpu_platform, VERL_PLATFORM=cpu), gloo, one fake GPU
        trainer.device=cpu
        +actor_rollout_ref.model.override_config.attn_implementation=sdpa
        actor_rollout_ref.model.use_remove_padding=False
        actor_rollout_ref.model.enable_gradient_checkpointing=False
        actor_rollout_ref.actor.strategy=fsdp2
        actor_rollout_ref.ref.strategy=fsdp2
        actor_rollout_ref.actor.use_torch_compile=False
        actor_rollout_ref.ref.use_torch_compile=False
        +actor_rollout_ref.rollout.enable_sleep_mode=False
        actor_rollout_ref.rollout.enforce_eager=True
        actor_rollout_ref.rollout.agent.num_workers=1
        reward.num_workers=1
        transfer_queue.backend.SimpleStorage.num_data_storage_units=1
        ray_kwargs.ray_init.num_cpus=32
        +ray_kwargs.ray_init.num_gpus=1
    )
}
