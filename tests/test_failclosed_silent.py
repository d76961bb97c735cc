"""Each once-silent wrong answer of issue 18 now stops with its message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perception_verl.analysis.label_perception import main as label_main
from perception_verl.analysis.mcnemar import main as mcnemar_main
from perception_verl.data.annotations import AnnotationError, parse_annotations
from perception_verl.data.schema import ROW_SCHEMA
from perception_verl.data.writer import write_outputs_atomically
from perception_verl_demo.samples import sample_rows
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang

REPO = Path(__file__).resolve().parents[1]

GENERATIONS = [
    {"id": "p1", "response": "JKLM is a parallelogram.", "annotations": ["JKLM is a parallelogram"]},
    {"id": "p2", "response": "I do not know.", "annotations": ["AB = 5"]},
]


def _generations(tmp_path: Path) -> Path:
    path = tmp_path / "gen.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in GENERATIONS))
    return path


def test_the_labeller_needs_an_explicit_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "labels.jsonl"
    args = ["--generations", str(_generations(tmp_path)), "--out", str(out), "--no-progress"]
    with pytest.raises(SystemExit):
        label_main([*args, "--judge-url", "http://127.0.0.1:1"])
    assert "the following arguments are required: --judge" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        label_main([*args, "--judge", "lexical", "--judge-url", "http://127.0.0.1:1"])
    assert "--judge-url needs --judge sglang or vllm (--judge lexical ignores it)" in capsys.readouterr().err
    assert not out.exists()


def test_the_labeller_takes_a_comma_list_of_replicas_and_records_its_judge(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    with fake_sglang() as one, fake_sglang() as two:
        urls = f"{one.url},{two.url}"
        code = label_main(
            [
                "--generations",
                str(_generations(tmp_path)),
                "--out",
                str(out),
                "--no-progress",
                "--judge",
                "sglang",
                "--judge-url",
                urls,
                "--judge-model",
                JUDGE_MODEL,
                "--json",
            ]
        )
        served = one.routes["/v1/chat/completions"] + two.routes["/v1/chat/completions"]
        assert one.routes["/health"] >= 1 and two.routes["/health"] >= 1
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {row["judge"] for row in rows} == {f"sglang:{JUDGE_MODEL}@{urls}"}
    assert served == 2


def test_mcnemar_with_no_paired_ids_is_an_error_naming_the_id_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"id": i, "correct": i % 2 == 0}) + "\n" for i in range(4)))
    b.write_text("".join(json.dumps({"id": str(i), "correct": True}) + "\n" for i in range(4)))
    assert mcnemar_main(["--labels-a", str(a), "--labels-b", str(b)]) != 0
    err = capsys.readouterr().err
    assert "no id is in both" in err
    assert "id types: A integer (4), B string (4)" in err


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<info1>a</info1><info2>b</info3>", "<info2> closed by </info3> (mismatched tags)"),
        ("<info1>a<info2>b</info2></info1>", "a tag nested inside <info1>"),
        ("<info1>a</info1><info2>b", "an unbalanced tag at '<info2>b'"),
        ("<info1>a</info1> and b", "text outside the tags"),
        ("<info1>a</info1><info1>b</info1>", "<info1> appears twice"),
        ("<info1>a</info1><info2>b</info2>c", "text outside the tags at 'c'"),
    ],
)
def test_malformed_info_tags_are_errors_naming_the_row(text: str, problem: str) -> None:
    with pytest.raises(AnnotationError) as info:
        parse_annotations(text, row="train:7 (id 12)")
    assert "in row 'train:7 (id 12)'" in str(info.value) and problem in str(info.value)


def test_a_raw_tag_left_in_a_listed_fact_is_an_error() -> None:
    with pytest.raises(AnnotationError, match=r"annotation 1 keeps a raw <infoK> tag.*row 'r'"):
        parse_annotations(["AB = 5", "<info2>CD = 3"], row="r")
    assert parse_annotations("<info2>b</info2> <info1>a</info1>") == ["a", "b"]


def _run_recipe(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k not in ("JUDGE_MODE", "PERCEPTION_WEIGHT", "DRY_RUN")}
    return subprocess.run(
        ["bash", str(REPO / "recipes" / "run_qwen25vl_7b.sh"), *args],
        env={**keep, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), "DRY_RUN": "1", **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_twelve_rows_with_a_batch_of_128_fail_the_dry_run_naming_steps_per_epoch(tmp_path: Path) -> None:
    rows = [
        {**row, "extra_info": {**row["extra_info"], "index": i}} for i, row in enumerate(sample_rows() * 4)
    ]
    assert len(rows) == 12
    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    bare = [{**row, "reward_model": {**row["reward_model"], "annotations": []}} for row in sample_rows()]
    write_outputs_atomically({train: rows, test: bare}, ROW_SCHEMA)
    result = _run_recipe(TRAIN_FILE=str(train), TEST_FILE=str(test), JUDGE_MODE="lexical")
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "[FAIL] steps per epoch: 0 steps per epoch (12 rows // data.train_batch_size=128; "
        "overlong filter not computed" in result.stdout
    )
    assert "DRY RUN FAILED: steps per epoch" in result.stdout
    # the unannotated validation file is fine, said once
    assert result.stdout.count("perception is not part of validation") == 1
    assert "[ok] data (validation)" in result.stdout
