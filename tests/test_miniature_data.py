"""The miniature's procedural geometry data set: families, held-out disjointness, annotations, converter."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from PIL import Image

from perception_verl.data.annotations import parse_annotations
from perception_verl_demo.geometry import (
    FAMILIES,
    TEST_ID_OFFSET,
    WARMUP_ID_OFFSET,
    choices_of,
    figure_png,
    generate,
    write_source,
)


@pytest.fixture(scope="module")
def problems():
    return generate(200, 50, seed=0)


def test_sizes_families_and_ids(problems) -> None:
    assert len(problems["train"]) == 200 and len(problems["test"]) == 50
    for split in ("train", "test"):
        assert {p.family for p in problems[split]} == set(FAMILIES)
        assert all(p.split == split and "<image>" in p.problem for p in problems[split])
    ids = [p.id for split in problems.values() for p in split]
    assert len(set(ids)) == len(ids)
    assert all(p.id >= TEST_ID_OFFSET for p in problems["test"])


def test_seeded_and_seed_changes_the_problems() -> None:
    assert generate(20, 10, seed=3) == generate(20, 10, seed=3)
    assert [p.problem for p in generate(20, 10, seed=3)["train"]] != [
        p.problem for p in generate(20, 10, seed=4)["train"]
    ]


def test_held_out_problems_differ_in_numbers_and_names(problems) -> None:
    train_numbers = {(p.family, p.numbers) for p in problems["train"]}
    train_names = {(p.family, p.names) for p in problems["train"]}
    train_texts = {p.problem for p in problems["train"]}
    for problem in problems["test"]:
        assert (problem.family, problem.numbers) not in train_numbers
        assert (problem.family, problem.names) not in train_names
        assert problem.problem not in train_texts


def test_facts_are_annotations_in_the_published_form_and_in_the_text(problems) -> None:
    for problem in problems["train"] + problems["test"]:
        assert 2 <= len(problem.facts) <= 8
        assert tuple(parse_annotations(problem.visual_key_info, row=problem.id)) == problem.facts
        assert problem.visual_key_info.startswith("<info1>") and problem.visual_key_info.endswith(
            f"</info{len(problem.facts)}>"
        )
        assert problem.answer != problem.wrong_answer
        for number in problem.numbers[:2]:
            assert str(number) in problem.problem


def test_figures_are_pngs_that_differ_per_problem(problems) -> None:
    pngs = [figure_png(p) for p in problems["test"]]
    assert len(set(pngs)) == len(pngs)
    image = Image.open(io.BytesIO(pngs[0]))
    assert image.format == "PNG" and image.size[0] * image.size[1] >= 3136


def test_choices_hold_the_answer_at_the_ground_truth_letter(problems) -> None:
    for problem in problems["train"]:
        choices, letter = choices_of(problem)
        assert len(choices) == 4 == len(set(choices))
        assert choices["ABCD".index(letter)] == problem.answer


def test_converter_round_trip(tmp_path) -> None:
    from data_prep import build_geometry3k as cli

    problems = generate(15, 10, seed=1)
    source, annotations = write_source(tmp_path / "src", problems)
    for split in ("train", "test"):
        table = pq.read_table(source / "data" / f"{split}-00000-of-00001.parquet")
        assert table.column_names == ["images", "problem", "answer", "id", "choices", "ground_truth"]
    assert "visual_key_info" in pq.read_table(annotations).column_names
    out = tmp_path / "data"
    code = cli.main(
        ["--source", str(source), "--annotations", str(annotations), "--out-dir", str(out), "--no-progress"]
    )
    assert code == 0
    for split in ("train", "test"):
        rows = pq.read_table(out / f"{split}.parquet").to_pylist()
        assert len(rows) == len(problems[split])
        for row, problem in zip(rows, problems[split], strict=True):
            assert row["extra_info"]["id"] == str(problem.id)
            assert row["reward_model"]["ground_truth"] == problem.answer
            assert tuple(row["reward_model"]["annotations"]) == problem.facts
            assert row["prompt"][0]["content"].count("<image>") == 1
            assert row["images"][0]["bytes"] == figure_png(problem)


def test_warmup_problems_share_nothing_with_held_out_ones_and_leave_train_and_test_unchanged() -> None:
    plain = generate(40, 20, seed=5)
    with_warmup = generate(40, 20, seed=5, n_warmup=300)
    assert plain["warmup"] == []
    assert with_warmup["train"] == plain["train"] and with_warmup["test"] == plain["test"]
    warmup = with_warmup["warmup"]
    assert len(warmup) == 300 and {p.family for p in warmup} == set(FAMILIES)
    assert all(p.split == "warmup" and p.id >= WARMUP_ID_OFFSET for p in warmup)
    test_numbers = {(p.family, p.numbers) for p in plain["test"]}
    test_names = {(p.family, p.names) for p in plain["test"]}
    test_texts = {p.problem for p in plain["test"]}
    for problem in warmup:
        assert (problem.family, problem.numbers) not in test_numbers
        assert (problem.family, problem.names) not in test_names
        assert problem.problem not in test_texts
    keys = [p.key for split in with_warmup.values() for p in split]
    assert len(set(keys)) == len(keys)


def test_warmup_problems_are_built_from_the_validation_split(tmp_path) -> None:
    from perception_verl.cli import main

    problems = generate(10, 5, seed=1, n_warmup=12)
    source, annotations = write_source(tmp_path / "src", problems)
    assert (source / "data" / "validation-00000-of-00001.parquet").is_file()
    out = tmp_path / "data"
    args = ["--source", str(source), "--annotations", str(annotations), "--out-dir", str(out)]
    splits = "train=train,test=test,validation=warmup"
    assert main(["build-geometry3k", *args, "--splits", splits, "--no-progress"]) == 0
    rows = pq.read_table(out / "warmup.parquet").to_pylist()
    assert [row["extra_info"]["id"] for row in rows] == [str(p.id) for p in problems["warmup"]]
    assert len(pq.read_table(out / "test.parquet")) == 5


class _ScriptedSampler:
    """A stand-in for trained weights: restates the facts after the forced opener for the problems in
    ``copies``, miscopies every digit for the others (the real sampler's forced-prefix path is run by
    the chain test)."""

    def __init__(self, problems, copies) -> None:
        self.problems = problems
        self.copies = copies

    def sample(self, prompt, images, *, n, temperature, max_new_tokens, prefix):
        (problem,) = [p for p in self.problems if p.statement in prompt[-1]["content"]]
        assert n == 1 and temperature == 0 and images and prefix.endswith("The figure shows:\n")
        shifted = str.maketrans("0123456789", "1234567890")
        statement = problem.statement if problem.id in self.copies else problem.statement.translate(shifted)
        return [f"{prefix}{statement}\nso it is done."]


def test_copy_check_counts_held_out_problems_stating_every_fact(tmp_path) -> None:
    from perception_verl.cli import main
    from perception_verl_demo.miniature import copy_check, read_problems, write_data

    write_data(tmp_path / "src", seed=3, n_train=10, n_test=6)
    source = ["--source", str(tmp_path / "src" / "geometry3k"), "--annotations"]
    args = [*source, str(tmp_path / "src" / "annotations.parquet"), "--out-dir", str(tmp_path / "data")]
    assert main(["build-geometry3k", *args, "--no-progress"]) == 0
    held_out = read_problems(tmp_path / "src" / "problems.json")["test"]
    sampler = _ScriptedSampler(held_out, {p.id for p in held_out[:4]})
    checked = copy_check(
        sampler, tmp_path / "data", tmp_path / "src" / "problems.json", split="test", max_new_tokens=64
    )
    assert checked == {"split": "test", "problems": 6, "states_every_fact": 4, "rate": 4 / 6}
