"""No run reaches the lexical judge unless it is named, and a judge that is down stops the run at start."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from perception_verl.client.errors import JudgeUnavailable
from perception_verl.config import RewardConfigError, from_kwargs, resolve_judge
from perception_verl.integration.manager import PerceptionRewardManager
from perception_verl.launch.compose import compose_trainer_config
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang
from tests.support.loopback import LoopbackServer, closed_port_url
from tests.support.verl_harness import score_all

REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    drop = ("JUDGE_MODE", "PERCEPTION_WEIGHT", "DRY_RUN", "JUDGE_URL", "JUDGE_WAIT_S", "ENTRY_MODULE")
    keep = {k: v for k, v in os.environ.items() if k not in drop}
    return {**keep, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), **extra}


def _recipe_overrides(**env: str) -> list[str]:
    snippet = 'source recipes/common.sh; pv_defaults; pv_build_overrides; printf "%s\\n" "${PV_OVERRIDES[@]}"'
    out = subprocess.run(["bash", "-c", snippet], cwd=REPO, env=_env(**env), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def _resolved(overrides: list[str]) -> str:
    cfg = compose_trainer_config(overrides)
    options = from_kwargs(cfg.reward.reward_kwargs)
    return resolve_judge(options, verl_judge=bool(cfg.reward.reward_model.enable)).judge


@pytest.mark.parametrize(
    ("mode", "weight", "judge"),
    [
        ("external", "0.7", "sglang"),
        ("external", "0", "sglang"),
        ("verl", "0.7", "sglang"),
        ("verl", "0", "sglang"),
        ("lexical", "0.7", "lexical"),
        ("lexical", "0", "lexical"),
    ],
)
def test_every_recipe_mode_composes_to_its_named_judge(mode: str, weight: str, judge: str) -> None:
    assert _resolved(_recipe_overrides(JUDGE_MODE=mode, PERCEPTION_WEIGHT=weight)) == judge


def test_verl_mode_without_judge_named_still_composes_to_the_http_judge() -> None:
    """The README's verl override block (no reward_kwargs.judge): the launched judge implies HTTP."""
    overrides = [
        o for o in _recipe_overrides(JUDGE_MODE="verl") if not o.startswith("+reward.reward_kwargs.judge=")
    ]
    assert _resolved(overrides) == "sglang"


KWARG_CHOICES: dict[str, list[Any]] = {
    "weights": [None, {"perception": 0.0}, {"perception": 0.5}],
    "judge_urls": [None, "http://j:1,http://j:2"],
    "judge_model": [None, "m"],
    "api_key_env": [None, "KEY"],
}


def _combinations() -> Iterator[dict[str, Any]]:
    keys = list(KWARG_CHOICES)
    for values in itertools.product(*(KWARG_CHOICES[k] for k in keys)):
        yield {k: v for k, v in zip(keys, values, strict=True) if v is not None}


@pytest.mark.parametrize("router", [False, True])
def test_no_combination_of_unnamed_options_reaches_the_lexical_judge(router: bool) -> None:
    seen: set[str] = set()
    for kwargs in _combinations():
        options = from_kwargs(kwargs)
        try:
            judge = resolve_judge(options, verl_judge=router).judge
        except RewardConfigError as error:
            assert "reward.reward_kwargs.judge" in str(error)
            assert not router and not kwargs.get("judge_urls")
            assert options.weights.perception > 0
            continue
        assert judge != "lexical", kwargs
        seen.add(judge)
        if kwargs.get("judge_urls") or router:
            assert judge == "sglang"
        else:
            assert judge == "none" and options.weights.perception == 0
    assert seen == ({"sglang"} if router else {"sglang", "none"})


def test_the_manager_itself_refuses_to_start_without_a_judge(tiny_tokenizer: Any) -> None:
    config = OmegaConf.create({"reward": {"reward_kwargs": {}}, "trainer": {"use_v1": True}})
    with pytest.raises(RewardConfigError, match=r"no perception judge named.*reward\.reward_kwargs\.judge"):
        PerceptionRewardManager(config, tiny_tokenizer)
    explicit = OmegaConf.create({"reward": {"reward_kwargs": {"judge": "lexical"}}})
    assert PerceptionRewardManager(explicit, tiny_tokenizer).judge_name == "lexical"


def test_a_verl_launched_judge_with_the_lexical_judge_named_is_refused() -> None:
    with pytest.raises(RewardConfigError, match="never calls it"):
        resolve_judge(from_kwargs({"judge": "lexical"}), verl_judge=True)


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoTokenizer

    from perception_verl_demo.tiny_tokenizer import build_tiny_tokenizer

    path = build_tiny_tokenizer(tmp_path_factory.mktemp("tok"))
    return AutoTokenizer.from_pretrained(str(path))


def _late_judge(url: str, delay_s: float) -> tuple[threading.Thread, list[LoopbackServer]]:
    """Start the loopback judge on ``url``'s port after ``delay_s`` (a judge still loading until then)."""
    port = int(url.rsplit(":", 1)[1])
    started: list[LoopbackServer] = []

    def run() -> None:
        threading.Event().wait(delay_s)
        server = fake_sglang(port=port)
        server.start()
        started.append(server)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, started


def _real_recipe(url: str, record: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "recipes" / "run_qwen25vl_7b.sh")],
        env=_env(
            JUDGE_URL=url,
            JUDGE_MODEL=JUDGE_MODEL,
            ENTRY_MODULE="tests.support.record_entry",
            PV_RECORD_ENTRY=str(record),
            **env,
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,  # the bound: a dead judge stops the run within 30 s
    )


def test_a_dead_judge_stops_the_real_recipe_before_verl_starts(tmp_path: Path) -> None:
    dead = closed_port_url()
    record = tmp_path / "entry.txt"
    result = _real_recipe(dead, record)
    assert result.returncode == 1, result.stdout + result.stderr
    failure = next(line for line in result.stdout.splitlines() if line.startswith("JUDGE CHECK FAILED"))
    assert dead in failure and "connection refused" in failure
    assert "JUDGE_WAIT_S" in result.stdout
    assert not record.exists()  # the trainer was never launched


def test_a_judge_opening_its_port_late_is_waited_for_by_the_recipe(tmp_path: Path) -> None:
    url = closed_port_url()
    record = tmp_path / "entry.txt"
    thread, started = _late_judge(url, 20.0)
    try:
        result = subprocess.run(
            ["bash", str(REPO / "recipes" / "run_qwen25vl_7b.sh")],
            env=_env(
                JUDGE_URL=url,
                JUDGE_MODEL=JUDGE_MODEL,
                JUDGE_WAIT_S="90",
                ENTRY_MODULE="tests.support.record_entry",
                PV_RECORD_ENTRY=str(record),
            ),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=200,
        )
        thread.join()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "waiting for the judge at" in result.stderr  # the progress line
        assert f"{JUDGE_MODEL} healthy at {url}" in result.stdout
        assert started[0].routes["/health"] >= 1
        assert "+reward.reward_kwargs.health_timeout_s=90" in record.read_text().splitlines()
    finally:
        thread.join()
        for server in started:
            server.stop()


def test_the_manager_waits_for_a_late_judge_and_scores_with_it(tiny_tokenizer: Any) -> None:
    from tests.test_integration_manager import SAMPLES, build_dataproto, expected

    url = closed_port_url()
    kwargs = {"judge_urls": url, "judge_model": JUDGE_MODEL}  # default health_timeout_s (30 s)
    config = OmegaConf.create({"reward": {"reward_kwargs": kwargs}, "trainer": {"use_v1": True}})
    thread, started = _late_judge(url, 20.0)
    try:
        manager = PerceptionRewardManager(config, tiny_tokenizer)  # blocks until the judge answers
        thread.join()
        assert manager.judge_name == f"sglang:{JUDGE_MODEL}@{url}"
        data = build_dataproto(tiny_tokenizer, SAMPLES)

        outputs = score_all(manager, data)
        assert started[0].routes["/v1/chat/completions"] == 3
        for sample, out in zip(SAMPLES, outputs, strict=True):
            assert out["reward_score"] == pytest.approx(expected(sample).score)
    finally:
        thread.join()
        for server in started:
            server.stop()


def test_a_dead_judge_stops_the_manager_at_construction_naming_the_url(tiny_tokenizer: Any) -> None:
    dead = closed_port_url()
    kwargs = {"judge_urls": dead, "judge_model": JUDGE_MODEL, "health_timeout_s": 2}
    config = OmegaConf.create({"reward": {"reward_kwargs": kwargs}})
    with pytest.raises(JudgeUnavailable) as info:
        PerceptionRewardManager(config, tiny_tokenizer)
    first = str(info.value).splitlines()[0]
    assert first.startswith("perception judge health check failed at start")
    assert dead in first and "connection refused" in first
