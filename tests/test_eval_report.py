"""The run report on a metrics file written by verl's own file logger (Tracking with backend 'file')."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from perception_verl.evaluation import report


def write_metrics(path: Path, monkeypatch) -> None:
    from verl.utils.tracking import Tracking

    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
    tracking = Tracking("proj", "exp", default_backend="file")
    tracking.log({"val-core/AI4Math/MathVista/acc/mean@1": 0.40}, step=0)
    for step in range(1, 13):
        accuracy = 0.3 + 0.03 * step
        metrics = {
            "reward/score/mean": accuracy * 0.9 + 0.1 + 0.4 * (0.2 + 0.05 * step),
            "reward/accuracy/mean": accuracy,
            "reward/format/mean": min(1.0, 0.6 + 0.04 * step),
            "reward/perception/mean": 0.2 + 0.05 * step,
            "reward/repetition/mean": -0.1 / step,
            "reward/num_annotations/mean": 4.0,
            "reward/judge_failed/rate": 0.05 if step % 4 == 0 else 0.0,
            "reward/judge_failed/count": 3.0 if step % 4 == 0 else 0.0,
            "reward/judge_latency_s/mean": 0.8 + 0.1 * math.sin(step),
            "reward/judge_latency_s/p95": 1.6 + 0.2 * math.sin(step),
            "response_length/mean": 400.0 + 20 * step,
            "response_length/max": 900.0 + 30 * step,
            "reward/perception_judge/sglang_Qwen_Qwen2.5-32B-Instruct-AWQ": 1.0,
            "training/global_step": step,
        }
        if step % 4 == 0:
            metrics["val-core/AI4Math/MathVista/acc/mean@1"] = 0.40 + 0.02 * step
        tracking.log(metrics, step=step)
    del tracking


def test_report_renders_every_panel(tmp_path: Path, monkeypatch, capsys) -> None:
    metrics = tmp_path / "exp.jsonl"
    write_metrics(metrics, monkeypatch)
    first = json.loads(metrics.read_text().splitlines()[0])
    assert first == {"step": 0, "data": {"val-core/AI4Math/MathVista/acc/mean@1": 0.4}}
    out = tmp_path / "report"
    assert report.main(["--metrics", str(metrics), "--out", str(out), "--json"]) == 0
    panels = json.loads(capsys.readouterr().out.splitlines()[-1])["panels"]
    assert set(panels) == {p.name for p in report.PANELS}
    assert panels["reward_components"] == [
        "reward/accuracy/mean",
        "reward/format/mean",
        "reward/perception/mean",
        "reward/repetition/mean",
        "reward/score/mean",
    ]
    page = (out / "report.md").read_text()
    for name in panels:
        image = np.asarray(Image.open(out / f"{name}.png").convert("RGB"), dtype=np.float64)
        assert image.shape[0] > 200 and image.shape[1] > 400
        assert image.std() > 10, f"{name}.png looks blank"
        # Curves are drawn in matplotlib's colour cycle: pixels far from white, black and grey.
        saturation = image.max(axis=2) - image.min(axis=2)
        assert (saturation > 80).sum() > 200, f"{name}.png shows no coloured curve"
        assert f"({name}.png)" in page
    assert "| `reward/accuracy/mean` | 12 | 0.33 | 0.66 | 0.33 | 0.66 |" in page
    assert "Perception judge: `sglang_Qwen_Qwen2.5-32B-Instruct-AWQ`." in page


def test_report_skips_panels_without_metrics(tmp_path: Path, capsys) -> None:
    metrics = tmp_path / "m.jsonl"
    metrics.write_text(
        '{"step": 1, "data": {"response_length/mean": 10}}\n'
        '{"step": 2, "data": {"response_length/mean": 12}}\n'
    )
    assert report.main(["--metrics", str(metrics), "--out", str(tmp_path / "r")]) == 0
    assert sorted(p.name for p in (tmp_path / "r").glob("*.png")) == ["response_length.png"]
    page = (tmp_path / "r" / "report.md").read_text()
    assert "Not in this run's metrics: Reward components" in page
    assert "Perception judge: not named in these metrics" in page


def test_report_refuses_other_files(tmp_path: Path, capsys) -> None:
    metrics = tmp_path / "m.jsonl"
    metrics.write_text('{"reward": 1}\n')
    assert report.main(["--metrics", str(metrics), "--out", str(tmp_path / "r")]) == 2
    assert "verl's file logger" in capsys.readouterr().err
