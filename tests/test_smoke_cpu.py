"""The CPU smoke run end to end (``bash recipes/smoke_cpu.sh``: verl's reward loop on Ray, lexical judge)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from perception_verl.config import from_kwargs
from perception_verl.launch.compose import compose_trainer_config
from perception_verl_demo.samples import PROBLEMS, QUALITY_LEVELS
from perception_verl_demo.smoke import smoke_overrides

REPO = Path(__file__).resolve().parents[1]


def _table(stdout: str) -> dict[tuple[str, str], dict[str, float]]:
    """Rows of the smoke table keyed by (problem, level)."""
    ids = {p.id for p in PROBLEMS}
    header: list[str] = []
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for line in stdout.splitlines():
        words = line.split()
        if words[:2] == ["problem", "response"]:
            header = words[2:]
        elif len(words) == len(header) + 2 and words and words[0] in ids:
            values = [float("nan") if w == "excluded" else float(w) for w in words[2:]]
            rows[(words[0], words[1])] = dict(zip(header, values, strict=True))
    return rows


@pytest.mark.ray
def test_smoke_run_scores_sample_responses_in_verls_reward_loop(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(REPO / "recipes" / "smoke_cpu.sh"), "--out-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "train.parquet").is_file() and (tmp_path / "tokenizer" / "tokenizer.json").is_file()
    rows = _table(result.stdout)
    assert set(rows) == {(p.id, level) for p in PROBLEMS for level in QUALITY_LEVELS}
    for problem in PROBLEMS:
        group = {level: rows[(problem.id, level)] for level in QUALITY_LEVELS}
        advantages = {level: row["advantage"] for level, row in group.items()}
        assert abs(sum(advantages.values())) < 1e-3
        assert max(advantages, key=advantages.__getitem__) == "perceptive"
        assert min(advantages, key=advantages.__getitem__) == "repetitive"
        assert advantages["correct"] > advantages["wrong"]
        assert group["perceptive"]["perception"] == 1.0 and group["correct"]["perception"] == 0.0
        assert group["repetitive"]["repetition"] < 0 and group["perceptive"]["repetition"] == 0
        assert group["malformed"]["format"] == 0 and group["perceptive"]["format"] == 1
        for row in group.values():
            weighted = 0.9 * row["accuracy"] + 0.1 * row["format"] + 0.7 * row["perception"]
            expected = weighted + row["repetition"]
            assert row["score"] == pytest.approx(expected, abs=2e-3)
            assert row["judge_failed"] == 0
    assert "reward/perception/mean" in result.stdout and "reward/judge_failed/rate" in result.stdout
    assert "reward/perception_judge/lexical" in result.stdout


def test_smoke_overrides_select_an_sglang_judge_at_the_given_url(tmp_path: Path) -> None:
    overrides = smoke_overrides(tmp_path, "http://127.0.0.1:30000,http://127.0.0.1:30001", "judge/model", 1)
    cfg = compose_trainer_config(overrides)
    options = from_kwargs(cfg.reward.reward_kwargs)
    assert options.judge == "sglang"
    assert options.judge_urls == ("http://127.0.0.1:30000", "http://127.0.0.1:30001")
    assert options.judge_model == "judge/model" and options.weights.perception == 0.7
    assert cfg.actor_rollout_ref.model.path == str(tmp_path)
    lexical = compose_trainer_config(smoke_overrides(tmp_path, None, None, 1))
    assert from_kwargs(lexical.reward.reward_kwargs).judge == "lexical"
