"""A verl validation dump, written by verl's own dump code from the evaluation reward manager's
outputs, scored into the accuracy table and into McNemar inputs (numbers checked by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from data_prep import build_benchmarks
from perception_verl.analysis import label_perception
from perception_verl.evaluation import compare, score
from perception_verl.evaluation.answers import AnswerSpec, check_answer, choice_letter
from perception_verl.evaluation.reward_manager import EvalRewardManager
from tests import eval_fixtures
from tests.support.loopback import LoopbackServer, closed_port_url
from tests.support.tiny_model import build_tiny_tokenizer
from tests.support.verl_harness import Sample, build_dataproto, score_all

FACTS = {"1": ["angle A is 45 degrees"], "2": ["side BC is 3.5 cm"]}


def boxed(answer: str, think: str = "I look at the figure.") -> str:
    return f"<think>{think}</think><answer>\\boxed{{{answer}}}</answer>"


# Per benchmark, in row order: (run A response, run B response) and whether each is right.
RESPONSES = {
    "mathvista": [
        (boxed("B"), boxed("45^\\circ", "Here angle A is 45 degrees.")),  # letter / choice text: both right
        (boxed("3.52 cm"), boxed("3.5", "The side BC is 3.5 cm long.")),  # precision 1: both right
        (boxed("5"), boxed("4")),  # A wrong, B right
    ],
    "mathverse": [(boxed("A"), boxed("(B) 50°")), (boxed("12"), boxed("12"))],
    "mathvision": [(boxed("C"), boxed("C")), (boxed("5"), "I am not sure.")],  # row 2: both wrong
    # WeMath rows: problem 2steps_1 (sub-problems 1, 2, composite), then 3steps_1 (1, 2, 3, composite).
    "wemath": [
        (boxed("A"), boxed("4 cm")),  # A wrong, B right (choice text)
        (boxed("A"), boxed("A")),
        (boxed("B"), boxed("12 cm")),  # composite: both right
        (boxed("B"), boxed("B")),
        (boxed("A"), boxed("(A)")),
        (boxed("A"), boxed("12.56 cm")),
        (boxed("C"), boxed("A")),  # composite: A wrong, B right
    ],
}
# Hand count: A right on 2/3, 1/2, 1/2, 5/7; B right on 3/3, 2/2, 1/2, 7/7.
EXPECTED = {
    "A": {"mathvista": (3, 2), "mathverse": (2, 1), "mathvision": (2, 1), "wemath": (7, 5)},
    "B": {"mathvista": (3, 3), "mathverse": (2, 2), "mathvision": (2, 1), "wemath": (7, 7)},
}
# WeMath's metric by hand. A: 2steps_1 has a wrong sub-problem but the composite right, so rote
# memorization when strict and complete mastery when loose (one sub-problem right); 3steps_1 has every
# sub-problem right and the composite wrong: inadequate generalization. n = 2, IK = 0, IG = 1:
# strict (2 - 0.5 - 1 - 0) / 2 = 25%, loose (2 - 0.5 - 0 - 0) / 2 = 75%. B: both complete mastery, 100%.
WEMATH = {
    "A": {"strict": {"IK": 0, "IG": 1, "CM": 0, "RM": 1}, "loose": {"IK": 0, "IG": 1, "CM": 1, "RM": 0}},
    "B": {"strict": {"IK": 0, "IG": 0, "CM": 2, "RM": 0}, "loose": {"IK": 0, "IG": 0, "CM": 2, "RM": 0}},
}
WEMATH_SCORES = {"A": (25.0, 75.0), "B": (100.0, 100.0)}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    folders = eval_fixtures.write_hub_layouts(root / "hub")
    facts = root / "facts.jsonl"
    facts.write_text("".join(json.dumps({"id": k, "annotations": v}) + "\n" for k, v in FACTS.items()))
    args = ["--out-dir", str(root / "out"), "--no-progress", "--annotations", f"mathvista={facts}"]
    for name, folder in folders.items():
        args += ["--source", f"{name}={folder}"]
    assert build_benchmarks.main(args) == 0
    return {name: root / "out" / f"{name}.parquet" for name in folders}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return AutoTokenizer.from_pretrained(str(build_tiny_tokenizer(Path(tmp_path_factory.mktemp("tok")))))


def verl_dump(tokenizer: Any, bench: dict[str, Path], run: int, folder: Path, step: int = 0) -> Path:
    """Score each row with EvalRewardManager.run_single and dump as verl's v1 trainer does."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    samples = []
    for name in ("mathvista", "mathverse", "mathvision", "wemath"):
        for row, responses in zip(pq.read_table(bench[name]).to_pylist(), RESPONSES[name], strict=True):
            samples.append(
                Sample(
                    row["prompt"][0]["content"],
                    responses[run],
                    row["reward_model"]["ground_truth"],
                    row["reward_model"]["annotations"],
                    row["data_source"],
                    row["extra_info"],
                    uid=f"{name}-{row['extra_info']['id']}",
                )
            )
    data = build_dataproto(tokenizer, samples)
    config = OmegaConf.create(
        {"reward": {"reward_kwargs": {"judge": "lexical"}}, "trainer": {"use_v1": True}}
    )
    manager = EvalRewardManager(config, tokenizer, compute_score=None)
    outputs = score_all(manager, data)  # on the manager's loop, as verl's reward loop runs it
    extras: dict[str, list] = {"reward": [o["reward_score"] for o in outputs]}
    for out in outputs:
        for key, value in out["reward_extra_info"].items():
            extras.setdefault(key, []).append(value)
    # The v1 trainer orders dump lines by uid and adds it: mimic a shuffled order.
    order = sorted(range(len(samples)), key=lambda i: samples[i].uid[::-1])
    PPOTrainer._write_generations(
        [tokenizer.decode(tokenizer.encode(samples[i].prompt)) for i in order],
        [samples[i].response for i in order],
        [samples[i].ground_truth for i in order],
        [extras["reward"][i] for i in order],
        {k: [v[i] for i in order] for k, v in extras.items()} | {"uid": [samples[i].uid for i in order]},
        str(folder),
        step,
    )
    return folder


def data_args(bench: dict[str, Path]) -> list[str]:
    return ["--data", ",".join(str(p) for p in bench.values())]


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tokenizer, bench) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    outs = {}
    for run, name in ((0, "A"), (1, "B")):
        dump = verl_dump(tokenizer, bench, run, root / f"val_{name}", step=0)
        outs[name] = root / f"scored_{name}"
        assert (
            score.main(["--dump", str(dump), *data_args(bench), "--out", str(outs[name]), "--label", name])
            == 0
        )
    return outs


def test_dump_has_verl_keys_and_row_ids(scored: dict[str, Path], tmp_path_factory) -> None:
    folder = next(p for p in scored["A"].parent.iterdir() if p.name == "val_A")
    line = json.loads((folder / "0.jsonl").read_text().splitlines()[0])
    assert {"input", "output", "gts", "score", "step", "eval_id", "eval_benchmark", "acc", "uid"} <= set(line)


@pytest.mark.parametrize("run", ["A", "B"])
def test_table_matches_hand_count(scored: dict[str, Path], run: str) -> None:
    summary = json.loads((scored[run] / "summary.json").read_text())
    got = {b["benchmark"]: (b["scored"], b["correct"]) for b in summary["benchmarks"]}
    assert got == EXPECTED[run]
    table = (scored[run] / "table.md").read_text()
    if run == "A":
        assert "| mathvista | 3 | 3 | 2 | 0 | 0 | 66.7 | 68.1 | 74.2 |" in table
        assert "| mathverse | 2 | 2 | 1 | 0 | 0 | 50.0 | 47.4 | 54.3 |" in table
    else:
        assert "| mathvista | 3 | 3 | 3 | 0 | 0 | 100.0 | 68.1 | 74.2 |" in table
        assert "| mathvision | 2 | 2 | 1 | 0 | 0 | 50.0 | 25.1 | 28.6 |" in table


@pytest.mark.parametrize("run", ["A", "B"])
def test_wemath_four_dimensional_matches_hand_count(scored: dict[str, Path], run: str) -> None:
    wemath = json.loads((scored[run] / "summary.json").read_text())["wemath_four_dimensional"]
    assert (wemath["problems"], wemath["classified"], wemath["unclassified"]) == (2, 2, 0)
    for variant in ("strict", "loose"):
        assert {k: wemath[variant][k] for k in ("IK", "IG", "CM", "RM")} == WEMATH[run][variant]
    assert (wemath["strict"]["score"], wemath["loose"]["score"]) == WEMATH_SCORES[run]
    table = (scored[run] / "table.md").read_text()
    assert "WeMath four-dimensional metric: 2 composite problems, 2 classified, 0 unclassified" in table
    if run == "A":
        # The accuracy row is unchanged in form: 5 of 7 rows right, beside the paper's figures.
        assert "| wemath | 7 | 7 | 5 | 0 | 0 | 71.4 | 61.4 | 72.0 |" in table
        assert "| strict | 0 (0.0%) | 1 (50.0%) | 0 (0.0%) | 1 (100.0%) | 25.0 |" in table
        assert "| loose | 0 (0.0%) | 1 (50.0%) | 1 (50.0%) | 0 (0.0%) | 75.0 |" in table
    else:
        assert "| strict | 0 (0.0%) | 0 (0.0%) | 2 (100.0%) | 0 (0.0%) | 100.0 |" in table


def test_wemath_missing_row_leaves_its_problem_unclassified(tokenizer, bench, tmp_path, capsys) -> None:
    dump = verl_dump(tokenizer, bench, 0, tmp_path / "val", step=3)
    lines = (dump / "3.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["eval_id"] != "3steps_1/3steps_2"]
    assert len(kept) == len(lines) - 1
    (dump / "3.jsonl").write_text("\n".join(kept) + "\n")
    assert score.main(["--dump", str(dump), *data_args(bench), "--allow-missing", "--json"]) == 0
    wemath = json.loads(capsys.readouterr().out.splitlines()[-1])["wemath_four_dimensional"]
    # 3steps_1 cannot be classified; 2steps_1 alone: strict RM, loose CM, so 0% and 100%.
    assert (wemath["problems"], wemath["classified"], wemath["unclassified"]) == (2, 1, 1)
    assert (wemath["strict"]["RM"], wemath["loose"]["CM"], wemath["strict"]["IG"]) == (1, 1, 0)
    assert (wemath["strict"]["score"], wemath["loose"]["score"]) == (0.0, 100.0)


def test_wemath_incomplete_problem_stops_unless_off(tokenizer, bench, tmp_path, capsys) -> None:
    """A WeMath file missing one sub-problem (as a --sample build would) names the problem."""
    table = pq.read_table(bench["wemath"])
    partial = tmp_path / "wemath_partial.parquet"
    pq.write_table(table.filter(pa.array([i != 1 for i in range(table.num_rows)])), partial)
    dump = verl_dump(tokenizer, bench, 0, tmp_path / "val", step=0)
    lines = [json.loads(line) for line in (dump / "0.jsonl").read_text().splitlines()]
    (dump / "0.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines if line["eval_id"] != "2steps_1/2steps_2")
    )
    files = [str(bench[name]) for name in ("mathvista", "mathverse", "mathvision")] + [str(partial)]
    args = ["--dump", str(dump), "--data", ",".join(files)]
    assert score.main(args) == 2
    err = capsys.readouterr().err
    assert "wemath: problem '2steps_1' is incomplete: no row with key 2steps_2" in err
    assert "--wemath-metric off" in err
    assert score.main([*args, "--wemath-metric", "off", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["wemath_four_dimensional"] is None
    assert {b["benchmark"]: b["scored"] for b in summary["benchmarks"]}["wemath"] == 6


def test_wemath_rows_without_keys_stop_unless_off(tokenizer, bench, tmp_path, capsys) -> None:
    """A WeMath file built before rows carried problem_id/step_key names a row and both ways out."""
    from perception_verl.data.benchmarks import BENCHMARK_SCHEMA

    rows = pq.read_table(bench["wemath"]).to_pylist()
    for row in rows:
        row["extra_info"] |= {"problem_id": None, "step_key": None}
    old = tmp_path / "wemath_old.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=BENCHMARK_SCHEMA), old)
    dump = verl_dump(tokenizer, bench, 0, tmp_path / "val", step=0)
    files = [str(bench[name]) for name in ("mathvista", "mathverse", "mathvision")] + [str(old)]
    args = ["--dump", str(dump), "--data", ",".join(files)]
    assert score.main(args) == 2
    err = capsys.readouterr().err
    assert "wemath row '2steps_1/2steps_1' has no extra_info.problem_id/step_key" in err
    assert "rebuild it with data_prep/build_benchmarks.py" in err and "--wemath-metric off" in err
    assert score.main([*args, "--wemath-metric", "off"]) == 0
    out = capsys.readouterr().out
    assert "| wemath | 7 | 7 | 5 | 0 | 0 | 71.4 | 61.4 | 72.0 |" in out and "four-dimensional" not in out


def test_results_say_how_each_answer_was_read(scored: dict[str, Path]) -> None:
    results = {r["id"]: r for r in map(json.loads, (scored["B"] / "results.jsonl").read_text().splitlines())}
    assert results["mathvista/1"]["reason"] == "choice_text"
    assert results["mathvista/2"]["reason"] == "precision"
    assert results["mathverse/1"]["reason"] == "letter"
    assert results["wemath/2steps_1/2steps_1"]["reason"] == "choice_text"
    assert results["wemath/3steps_1/3steps_2"]["reason"] == "letter"


def test_mcnemar_on_accuracy_and_perception(scored: dict[str, Path], capsys) -> None:
    labels = {}
    for run in ("A", "B"):
        labels[run] = scored[run] / "perception_labels.jsonl"
        assert (
            label_perception.main(
                [
                    "--generations",
                    str(scored[run] / "generations.jsonl"),
                    "--out",
                    str(labels[run]),
                    "--judge",
                    "lexical",
                    "--no-progress",
                ]
            )
            == 0
        )
    capsys.readouterr()
    assert (
        compare.main(
            [
                "--run-a",
                str(scored["A"]),
                "--run-b",
                str(scored["B"]),
                "--perception-a",
                str(labels["A"]),
                "--perception-b",
                str(labels["B"]),
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    accuracy = report["accuracy"]
    # Hand count over 14 problems: both right 9, A-only 0, both wrong 1 (mathvision/2),
    # B-only 4 (mathvista/3, mathverse/1, wemath/2steps_1/2steps_1, wemath/3steps_1/3steps_multi).
    assert accuracy["table"] == {
        "both_correct": 9,
        "a_correct_b_wrong": 0,
        "a_wrong_b_correct": 4,
        "both_wrong": 1,
    }
    assert accuracy["p_exact"] == pytest.approx(0.125)  # 2 * 0.5**4
    assert accuracy["chi2_statistic"] == pytest.approx(2.25)  # (|0 - 4| - 1)**2 / 4
    assert accuracy["p_chi2"] == pytest.approx(0.1336, abs=1e-4)
    perception = report["perception"]
    # Only the two annotated MathVista problems are labelled; B states both facts, A neither.
    assert perception["n_pairs"] == 2
    assert (perception["b_a_only"], perception["c_b_only"]) == (0, 2)
    assert perception["p_exact"] == pytest.approx(0.5)


def test_missing_rows_and_foreign_ids_fail_closed(tokenizer, bench, tmp_path, capsys) -> None:
    dump = verl_dump(tokenizer, bench, 0, tmp_path / "val", step=7)
    lines = (dump / "7.jsonl").read_text().splitlines()
    (dump / "7.jsonl").write_text("\n".join(lines[1:]) + "\n")
    assert score.main(["--dump", str(dump), *data_args(bench)]) == 2
    assert "1 benchmark row(s) have no generation" in capsys.readouterr().err
    assert score.main(["--dump", str(dump), *data_args(bench), "--allow-missing", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert sum(b["missing"] for b in summary["benchmarks"]) == 1
    assert score.main(["--dump", str(dump), "--data", str(bench["mathvista"])]) == 2
    assert "is in none of the benchmark files" in capsys.readouterr().err


def test_answer_judge_extracts_over_http(tokenizer, bench, tmp_path, capsys) -> None:
    def responder(messages: list[dict], body: dict) -> str:
        text = messages[-1]["content"]
        if "angle A" in text:
            return "B"
        if "side BC" in text:
            return "3.5"
        return "NONE"

    dump = verl_dump(tokenizer, bench, 1, tmp_path / "val")
    with LoopbackServer(responder, model="judge-72b") as server:
        status = score.main(
            [
                "--dump",
                str(dump),
                "--data",
                ",".join(str(p) for p in bench.values()),
                "--judge",
                "sglang",
                "--judge-url",
                f"{closed_port_url()},{server.url}",
                "--judge-model",
                "judge-72b",
                "--max-retries",
                "2",
                "--no-progress",
                "--json",
            ]
        )
    assert status == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    got = {b["benchmark"]: (b["scored"], b["correct"]) for b in summary["benchmarks"]}
    assert got["mathvista"] == (3, 2)  # NONE for the bar chart: no answer, scored wrong
    assert got["wemath"] == (7, 0)
    # Every WeMath answer judged NONE: both problems insufficient knowledge, score 0.
    wemath = summary["wemath_four_dimensional"]
    assert (wemath["strict"]["IK"], wemath["strict"]["score"], wemath["loose"]["score"]) == (2, 0.0, 0.0)


def test_answer_judge_down_stops(tokenizer, bench, tmp_path, capsys) -> None:
    dump = verl_dump(tokenizer, bench, 1, tmp_path / "val")
    status = score.main(
        [
            "--dump",
            str(dump),
            *data_args(bench),
            "--judge",
            "sglang",
            "--judge-url",
            closed_port_url(),
            "--judge-model",
            "m",
            "--health-timeout-s",
            "2",
            "--no-progress",
        ]
    )
    assert status == 3
    assert "judge unavailable" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("(C)", "C"),
        ("D. 40°", "D"),
        ("\\text{A}", "A"),
        ("Option B", "B"),
        ("40°", None),
        ("A triangle", None),
    ],
)
def test_choice_letter(text: str, letter: str | None) -> None:
    assert choice_letter(text, 4) == letter


def test_free_form_units_and_precision() -> None:
    spec = AnswerSpec("1.25", "free_form", "float", precision=2, unit="m")
    assert check_answer(boxed("1.254 m"), spec).correct
    assert not check_answer(boxed("1.26"), spec).correct
    assert check_answer(boxed("\\frac{1}{2}"), AnswerSpec("0.5", "free_form")).correct
