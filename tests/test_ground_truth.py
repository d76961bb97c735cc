"""Ground truths: one clear text form or a named error at build time; a counted failure in the reward loop."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from transformers import AutoTokenizer

from perception_verl.data.geometry3k import convert_row
from perception_verl.data.schema import ConvertedProblem, RowError, build_row
from perception_verl.integration.manager import PerceptionRewardManager
from perception_verl.integration.metrics import JUDGE_KEY, reward_metrics
from perception_verl.rewards.accuracy import accuracy_reward
from perception_verl.rewards.ground_truth import GroundTruthError, ground_truth_text
from perception_verl.scorer import EXTRA_KEYS
from perception_verl_demo.tiny_tokenizer import build_tiny_tokenizer
from tests.support.verl_harness import Sample, build_dataproto, score_all

BOXED_NONE = "<think>\nNo answer.\n</think>\n<answer>\n\\boxed{None}\n</answer>"
BOXED_TEN = "<think>\nAB = 10.\n</think>\n<answer>\n\\boxed{10}\n</answer>"

KEPT = [
    ("10", "10"),
    ("  2\\sqrt{3} ", "2\\sqrt{3}"),
    (10, "10"),
    (np.int64(7), "7"),
    (10.0, "10"),
    (2.5, "2.5"),
    (["10"], "10"),
    (("x",), "x"),
    (np.array(["4"]), "4"),
    (np.array(5), "5"),
]
MISSING = [None, "", "   ", "$$", "None", "nan", "NULL", math.nan, np.float64("nan"), [], np.array([])]
UNUSABLE = [True, False, np.bool_(True), math.inf, ["1", "2"], [["10"]], b"10", {"answer": "10"}]


@pytest.mark.parametrize(("value", "text"), KEPT)
def test_values_with_one_text_form_are_kept(value: Any, text: str) -> None:
    assert ground_truth_text(value) == text


@pytest.mark.parametrize("value", MISSING + UNUSABLE)
def test_values_without_one_text_form_are_errors(value: Any) -> None:
    with pytest.raises(GroundTruthError) as caught:
        ground_truth_text(value)
    assert caught.value.missing == any(value is m for m in MISSING)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "red").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("value", MISSING)
def test_builder_names_the_row_of_a_missing_answer(value: Any) -> None:
    row = {"id": 9, "problem": "Find x.", "answer": value, "images": [png()]}
    with pytest.raises(RowError, match=r"^split 'test' index 4 \(id 9\): missing answer: the ground truth"):
        convert_row("test", 4, row)


@pytest.mark.parametrize("value", UNUSABLE)
def test_builder_names_the_row_of_an_unusable_answer(value: Any) -> None:
    row = {"id": 9, "problem": "Find x.", "answer": value, "images": [png()]}
    with pytest.raises(RowError, match=r"^split 'test' index 4 \(id 9\): unusable answer: the ground truth"):
        convert_row("test", 4, row)


@pytest.mark.parametrize(("value", "text"), [(10, "10"), (["10"], "10"), (2.5, "2.5")])
def test_builder_keeps_the_one_text_form(value: Any, text: str) -> None:
    problem = convert_row("test", 4, {"id": 9, "problem": "Find x.", "answer": value, "images": [png()]})
    row = build_row(problem, [], "Think.")
    assert row["reward_model"]["ground_truth"] == text and row["extra_info"]["answer"] == text


def test_build_row_refuses_a_placeholder_answer() -> None:
    problem = ConvertedProblem("train", 3, "17", "<image>Find x.", "None", (b"png",), ("h",))
    with pytest.raises(RowError, match=r"split 'train' index 3 \(id 17\): missing answer"):
        build_row(problem, [], "Think.")


@pytest.mark.parametrize("truth", ["None", "none", "nan", "null", "", " "])
def test_boxed_placeholder_never_matches_a_missing_ground_truth(truth: str) -> None:
    result = accuracy_reward(BOXED_NONE, truth)
    assert (result.score, result.reason) == (0.0, "bad_ground_truth")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return AutoTokenizer.from_pretrained(str(build_tiny_tokenizer(Path(tmp_path_factory.mktemp("tok")))))


def test_invalid_ground_truths_are_counted_failures_in_the_reward_loop(
    tokenizer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    truths: list[Any] = [None, "", math.nan, "None", True, ["1", "2"], 10, ["10"], "10"]
    responses = [BOXED_NONE] * 6 + [BOXED_TEN] * 3
    samples = [Sample("Find x. <image>", response, "10") for response in responses]
    data = build_dataproto(tokenizer, samples)
    for i, truth in enumerate(truths):
        data.non_tensor_batch["reward_model"][i] = {"style": "rule", "ground_truth": truth}
    kwargs = {"judge": "lexical"}
    config = OmegaConf.create({"reward": {"reward_kwargs": kwargs}, "trainer": {"use_v1": True}})
    manager = PerceptionRewardManager(config, tokenizer, compute_score=None)

    outputs = score_all(manager, data)
    infos = [out["reward_extra_info"] for out in outputs]
    assert all(tuple(info) == (*EXTRA_KEYS, JUDGE_KEY) for info in infos)
    assert [info["ground_truth_invalid"] for info in infos] == [1.0] * 6 + [0.0] * 3
    assert [info["accuracy"] for info in infos] == [0.0] * 6 + [1.0] * 3
    for i in range(6):
        assert f"index={i}" in caplog.text
    columns = {key: np.array([info[key] for info in infos]) for key in EXTRA_KEYS}
    assert reward_metrics(columns)["reward/ground_truth_invalid/count"] == 6.0
