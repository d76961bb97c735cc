"""Dry-run checks of a vision-language policy: the rollout sees the images, every row carries one."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from omegaconf import OmegaConf

from perception_verl.launch.vl_checks import (
    check_image_rows,
    check_rollout_images,
    policy_is_vl,
    rows_without_images,
)


def _model(tmp_path: Path, vision: bool) -> Path:
    folder = tmp_path / ("vl" if vision else "text")
    folder.mkdir()
    config = {"model_type": "qwen2"}
    if vision:
        config = {"model_type": "qwen2_5_vl", "vision_config": {"depth": 2}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _config(model: str, load_format: str = "dummy", **rollout: object) -> object:
    return OmegaConf.create(
        {
            "actor_rollout_ref": {
                "model": {"path": model},
                "rollout": {"name": "vllm", "load_format": load_format, **rollout},
            },
            "data": {"image_key": "images"},
        }
    )


def test_the_policy_kind_comes_from_its_config(tmp_path: Path) -> None:
    assert policy_is_vl(str(_model(tmp_path, True))) is True
    assert policy_is_vl(str(_model(tmp_path, False))) is False
    assert policy_is_vl("Qwen/Qwen2.5-VL-7B-Instruct") is True
    assert policy_is_vl("Qwen/Qwen2.5-7B-Instruct") is None


def test_a_dummy_load_with_a_normalising_vllm_fails_naming_both_fixes(tmp_path: Path) -> None:
    check = check_rollout_images(_config(str(_model(tmp_path, True))), installed="0.32.0+cpu")
    assert not check.ok
    assert "vLLM 0.32.0+cpu" in check.detail and "load_format=dummy" in check.detail
    assert "load_format=auto" in check.detail and "mm_device_do_normalize=False" in check.detail


def test_the_fixes_and_the_safe_cases_pass(tmp_path: Path) -> None:
    vl = str(_model(tmp_path, True))
    assert check_rollout_images(_config(vl, "auto"), installed="0.32.0").ok
    fixed = _config(vl, engine_kwargs={"vllm": {"mm_device_do_normalize": False}})
    assert check_rollout_images(fixed, installed="0.32.0").ok
    assert check_rollout_images(_config(vl), installed="0.24.0").ok  # no device normalisation before 0.29
    assert check_rollout_images(_config(str(_model(tmp_path, False))), installed="0.32.0").ok


def _rows(path: Path, images: list[list[dict]]) -> Path:
    pq.write_table(pa.table({"images": images, "prompt": ["x"] * len(images)}), str(path))
    return path


def test_rows_without_an_image_are_named_with_the_verl_line(tmp_path: Path) -> None:
    data = _rows(tmp_path / "train.parquet", [[{"bytes": b"png"}], [], [{"bytes": b"png"}]])
    assert rows_without_images(str(data), "images") == (3, [1])
    check = check_image_rows("train", str(data), _config(str(_model(tmp_path, True))))
    assert check is not None and not check.ok
    assert "rows 1" in check.detail and "qwen2_vl.py:393" in check.detail
    assert check_image_rows("train", str(data), _config(str(_model(tmp_path, False)))) is None
