"""data_prep/build_benchmarks.py on fixtures in each benchmark's hub layout; verl's RLHFDataset loads them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep import build_benchmarks as cli
from perception_verl.data.benchmarks import mathverse_choices, wemath_choices
from perception_verl.data.schema import DEFAULT_INSTRUCTION
from tests import eval_fixtures


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    return eval_fixtures.build_all(root / "hub", root / "out")


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_mathvista_rows_carry_answer_types(built: dict[str, Path]) -> None:
    first, second, third = rows(built["mathvista"])
    assert first["data_source"] == "AI4Math/MathVista"
    assert first["reward_model"]["ground_truth"] == "B"  # "45°" is the second choice
    info = first["extra_info"]
    assert (info["id"], info["benchmark"], info["question_type"]) == ("1", "mathvista", "multiple_choice")
    assert info["choices"] == ["30°", "45°", "60°", "90°"] and info["answer_letter"] == "B"
    assert (
        "task:geometry problem solving" in info["subsets"] and "skill:geometry reasoning" in info["subsets"]
    )
    content = first["prompt"][0]["content"]
    assert content.startswith("<image>Find the measure of angle A.\nChoices:\n(A) 30°\n(B) 45°")
    assert content.endswith(DEFAULT_INSTRUCTION)
    assert second["extra_info"]["precision"] == 1 and second["extra_info"]["unit"] == "cm"
    assert second["reward_model"]["ground_truth"] == "3.5"
    assert (
        second["extra_info"]["question_type"] == "free_form"
        and second["extra_info"]["answer_type"] == "float"
    )
    assert third["extra_info"]["answer_type"] == "integer" and third["extra_info"]["precision"] is None
    assert all(row["images"][0]["bytes"].startswith(b"\x89PNG") for row in (first, second, third))


def test_mathverse_mathvision_wemath_rows(built: dict[str, Path]) -> None:
    verse = rows(built["mathverse"])
    assert verse[0]["extra_info"]["choices"] == ["40°", "50°", "60°", "70°"]
    assert verse[0]["reward_model"]["ground_truth"] == "B"
    assert verse[1]["extra_info"]["question_type"] == "free_form"
    assert "version:Vision Only" in verse[1]["extra_info"]["subsets"]
    assert verse[1]["prompt"][0]["content"].startswith("<image>Answer the question shown in the image.")
    vision = rows(built["mathvision"])
    assert (
        vision[0]["extra_info"]["answer_letter"] == "C"
        and "<image1>" not in vision[0]["prompt"][0]["content"]
    )
    assert vision[0]["prompt"][0]["content"].count("<image>") == 1
    assert (
        vision[1]["extra_info"]["question_type"] == "free_form"
        and vision[1]["reward_model"]["ground_truth"] == "6"
    )
    wemath = rows(built["wemath"])
    assert wemath[2]["extra_info"]["choices"] == ["10 cm", "12 cm", "14 cm"]
    assert [r["reward_model"]["ground_truth"] for r in wemath] == ["B", "A", "B", "B", "A", "A", "A"]
    assert wemath[4]["extra_info"]["subsets"] == ["concept:Area of circles"]
    # The rows of a composite problem share ID; the row id adds the key, and both travel for the metric.
    assert [r["extra_info"]["id"] for r in wemath[:3]] == [
        "2steps_1/2steps_1",
        "2steps_1/2steps_2",
        "2steps_1/2steps_multi",
    ]
    assert {r["extra_info"]["problem_id"] for r in wemath[3:]} == {"3steps_1"}
    keys = [r["extra_info"]["step_key"] for r in wemath[3:]]
    assert keys == ["3steps_1", "3steps_2", "3steps_3", "3steps_multi"]
    assert wemath[6]["extra_info"]["choices"] == ["12.56 cm²", "25.12 cm²", "6.28 cm²", "No correct answer"]
    assert verse[0]["extra_info"]["problem_id"] is None and verse[0]["extra_info"]["step_key"] is None


def test_choice_parsers() -> None:
    assert mathverse_choices("Find x.\nChoices:\nA:1\nB:2") == ("1", "2")
    assert mathverse_choices("Find x.") == ()
    assert wemath_choices("A. 6; B. 8; C. 10") == ("6", "8", "10")
    assert wemath_choices("six or eight") == ()
    # Shapes seen in We-Math's testmini: marks after a space, a full-width dot, a letter inside a
    # choice followed by an empty one (";C.;"), trailing "; ;" padding.
    assert wemath_choices("A. 30° B. 45° ;C. 90°; D. None") == ("30°", "45°", "90°", "None")
    assert wemath_choices("A. ①;B．②; C. No correct answer") == ("①", "②", "No correct answer")
    assert wemath_choices("A. at ;C.; B. at ;D.; C. Neither") == ("at ;C.", "at ;D.", "Neither")
    assert wemath_choices("A. left;  ; B. right;  ; C. No.  ") == ("left", "right", "No.")
    assert wemath_choices("A. ;B. 2") == ()


def test_build_is_reproducible(tmp_path: Path, built: dict[str, Path]) -> None:
    again = eval_fixtures.build_all(tmp_path / "hub", tmp_path / "out")
    for name, path in built.items():
        assert again[name].read_bytes() == path.read_bytes(), name


def test_geometry_subset_and_sample(tmp_path: Path) -> None:
    folder = eval_fixtures.write_hub_layouts(tmp_path / "hub")["mathvista"]
    out = tmp_path / "geo.parquet"
    args = [
        "--benchmarks",
        "mathvista",
        "--source",
        f"mathvista={folder}",
        "--out",
        f"mathvista={out}",
        "--subset",
        "task:geometry problem solving",
        "--no-progress",
    ]
    assert cli.main(args) == 0
    assert [r["extra_info"]["id"] for r in rows(out)] == ["1", "2"]
    assert cli.main([*args, "--sample", "1", "--seed", "3"]) == 0
    first = [r["extra_info"]["id"] for r in rows(out)]
    assert cli.main([*args, "--sample", "1", "--seed", "3"]) == 0
    assert [r["extra_info"]["id"] for r in rows(out)] == first and len(first) == 1


def test_annotations_join_by_id(tmp_path: Path) -> None:
    folder = eval_fixtures.write_hub_layouts(tmp_path / "hub")["mathvista"]
    facts = tmp_path / "facts.jsonl"
    facts.write_text('{"id": "1", "annotations": ["angle A is marked", "AB = AC"]}\n')
    out = tmp_path / "mv.parquet"
    assert (
        cli.main(
            [
                "--benchmarks",
                "mathvista",
                "--source",
                f"mathvista={folder}",
                "--out",
                f"mathvista={out}",
                "--annotations",
                f"mathvista={facts}",
                "--no-progress",
            ]
        )
        == 0
    )
    got = [r["reward_model"]["annotations"] for r in rows(out)]
    assert got == [["angle A is marked", "AB = AC"], [], []]


def test_bad_row_is_named_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow as pa

    folder = eval_fixtures.write_hub_layouts(tmp_path / "hub")["mathvista"]
    shard = next((folder / "data").glob("*.parquet"))
    table = pq.read_table(shard).to_pylist()
    table[2]["question_type"] = "multi_choice"
    table[2]["choices"] = ["1", "2"]
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(shard)), shard)
    out = tmp_path / "mv.parquet"
    status = cli.main(
        [
            "--benchmarks",
            "mathvista",
            "--source",
            f"mathvista={folder}",
            "--out",
            f"mathvista={out}",
            "--no-progress",
        ]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "split 'testmini' index 2 (id 3)" in err and "'4' is not among the choices" in err
    assert not out.exists()


def test_unknown_column_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = eval_fixtures.write_hub_layouts(tmp_path / "hub")["wemath"]
    assert (
        cli.main(
            [
                "--benchmarks",
                "wemath",
                "--source",
                f"wemath={folder}",
                "--column",
                "wemath.idd=ID",
                "--out-dir",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "unknown column key(s) ['idd']" in capsys.readouterr().err


def _wemath_cli(tmp_path: Path, hub_rows: list[dict], *extra: str) -> tuple[int, Path]:
    folder = tmp_path / "wemath"
    eval_fixtures.write_wemath(hub_rows, folder)
    out = tmp_path / "wemath.parquet"
    args = ["--benchmarks", "wemath", "--source", f"wemath={folder}", "--out", f"wemath={out}"]
    status = cli.main([*args, "--no-progress", *extra])
    return status, out


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "missing key in column 'key' (WeMath's four-dimensional metric groups rows by it)"),
        ("2steps_9", "key '2steps_9': sub-problem 9 of a 2-step problem (column 'key')"),
        ("step two", "key 'step two' is not '<N>steps_<i>' or '<N>steps_multi'"),
    ],
)
def test_wemath_row_without_a_valid_key_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str | None, message: str
) -> None:
    hub_rows = eval_fixtures.wemath_rows()
    hub_rows[1]["key"] = key
    status, out = _wemath_cli(tmp_path, hub_rows)
    assert status == 2
    err = capsys.readouterr().err
    assert "split 'testmini' index 1 (id 2steps_1)" in err and message in err
    assert not out.exists()


def test_wemath_without_its_key_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--column wemath.key=-``: ids must then be unique alone (the problem ID repeats across its rows)."""
    hub_rows = eval_fixtures.wemath_rows()
    for row in hub_rows:
        del row["key"]
    status, _ = _wemath_cli(tmp_path, hub_rows, "--column", "wemath.key=-")
    assert status == 2
    assert "duplicate id '2steps_1' (first at index 0)" in capsys.readouterr().err
    status, out = _wemath_cli(
        tmp_path, hub_rows, "--column", "wemath.key=-", "--column", "wemath.id=question number"
    )
    assert status == 0
    infos = [r["extra_info"] for r in rows(out)]
    assert [i["id"] for i in infos] == [str(n) for n in range(1, 8)]
    assert all(i["problem_id"] is None and i["step_key"] is None for i in infos)


def test_verl_rlhf_dataset_loads_every_benchmark(built, tmp_path, monkeypatch) -> None:
    import datasets
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn
    from verl.utils.tokenizer import hf_processor, hf_tokenizer

    from tests.support.tiny_processor import build_tiny_processor

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    model_dir = build_tiny_processor(tmp_path / "tiny")
    tokenizer, processor = hf_tokenizer(str(model_dir)), hf_processor(str(model_dir))
    config = OmegaConf.create(
        {
            "cache_dir": str(tmp_path / "verl_cache"),
            "prompt_key": "prompt",
            "image_key": "images",
            "max_prompt_length": 1024,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": None,
            "return_raw_chat": True,
            "truncation": "error",
        }
    )
    files = [str(built[name]) for name in ("mathvista", "mathverse", "mathvision", "wemath")]
    dataset = RLHFDataset(files, tokenizer, config, processor=processor)
    assert len(dataset) == 3 + 2 + 2 + 7
    item = dataset[0]
    content = item["raw_prompt"][0]["content"]
    assert [part["type"] for part in content] == ["image", "text"]
    assert isinstance(content[0]["image"], Image.Image)
    assert item["extra_info"]["id"] == "1" and item["extra_info"]["benchmark"] == "mathvista"
    batch = collate_fn([dataset[i] for i in range(len(dataset))])
    assert [info["benchmark"] for info in batch["extra_info"]] == (
        ["mathvista"] * 3 + ["mathverse"] * 2 + ["mathvision"] * 2 + ["wemath"] * 7
    )
