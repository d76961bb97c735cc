"""End-to-end tests of data_prep/build_geometry3k.py on Geometry3K-shaped fixtures (no downloads).

The fixture is laid out like the hub's copy (parquet shards under ``data/``) and as a
``save_to_disk`` folder; annotations come in both published forms (``<infoK>`` text in
``visual_key_info`` with images, and the collector's jsonl lists). The written parquet is loaded
by verl 0.9's own ``RLHFDataset`` with an offline Qwen2.5-VL processor.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from data_prep import build_geometry3k as cli
from perception_verl.data import writer
from perception_verl.data.schema import DATA_SOURCE, DEFAULT_INSTRUCTION

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "data_prep" / "build_geometry3k.py"

# (problem, answer, shape, annotations); duplicated texts differ by image (and answer).
TRAIN = [
    ("<image>Find x.", "5", "triangle", ["Triangle ABC has a right angle at C", "AB = 13", "BC = 12"]),
    ("<image>Find x.", "7", "square", ["ABCD is a square", "side AB has length 7"]),
    ("Find the area of the circle.", "25\\pi", "circle", ["the circle has radius 5"]),
    ("<image>Find m \\angle 2.", "71", "lines", []),
]
TEST = [
    ("<image>Find y.", "3", "triangle", []),
    ("<image>Find the perimeter.", "24", "square", []),
]
VALIDATION = [("<image>Find z.", "2", "circle", [])]


def draw_diagram(shape: str, seed: int, fmt: str = "PNG") -> bytes:
    """A small geometry-like diagram drawn with PIL; ``seed`` makes each picture distinct."""
    image = Image.new("RGB", (96, 72), "white")
    pen = ImageDraw.Draw(image)
    offset = 4 + seed * 3
    if shape == "triangle":
        pen.polygon([(offset, 60), (80, 60), (offset, 10)], outline="black")
    elif shape == "square":
        pen.rectangle([offset, 10, offset + 40, 50], outline="black")
    elif shape == "circle":
        pen.ellipse([offset, 8, offset + 50, 58], outline="black")
    else:
        pen.line([(0, offset), (95, 70 - offset)], fill="black")
        pen.line([(0, 60), (95, 20)], fill="black")
    pen.text((60, 4), f"x{seed}", fill="blue")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def split_records(split: str, items: list, seed0: int) -> list[dict]:
    records = []
    for index, (problem, answer, shape, _) in enumerate(items):
        fmt = "JPEG" if (split, index) == ("train", 2) else "PNG"
        records.append(
            {
                "images": [{"bytes": draw_diagram(shape, seed0 + index, fmt), "path": None}],
                "problem": problem,
                "answer": answer,
                "id": index,
                "choices": ["1", "2", answer, "4"],
                "ground_truth": "C",
            }
        )
    return records


def geometry3k_records() -> dict[str, list[dict]]:
    return {
        "train": split_records("train", TRAIN, 0),
        "validation": split_records("validation", VALIDATION, 10),
        "test": split_records("test", TEST, 20),
    }


def _features():
    from datasets import Features, Image, List, Value

    return Features(
        {
            "images": List(Image()),
            "problem": Value("string"),
            "answer": Value("string"),
            "id": Value("int64"),
            "choices": List(Value("string")),
            "ground_truth": Value("string"),
        }
    )


def write_hub_layout(root: Path, records: dict[str, list[dict]]) -> Path:
    """Parquet shards named as on the hub: ``data/<split>-00000-of-00001.parquet``."""
    from datasets import Dataset

    (root / "data").mkdir(parents=True)
    for split, rows in records.items():
        dataset = Dataset.from_list(rows, features=_features())
        dataset.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


def write_save_to_disk(root: Path, records: dict[str, list[dict]]) -> Path:
    from datasets import Dataset, DatasetDict

    DatasetDict(
        {split: Dataset.from_list(rows, features=_features()) for split, rows in records.items()}
    ).save_to_disk(str(root))
    return root


def write_published_annotations(path: Path, records: dict[str, list[dict]]) -> Path:
    """The published form: Geometry3K columns plus ``visual_key_info`` as ``<infoK>`` text."""
    from datasets import Dataset, Features, Image, List, Value

    rows = []
    for (_, _, _, facts), record in zip(TRAIN, records["train"], strict=True):
        if facts:
            tagged = "".join(f"<info{k}>{fact}</info{k}>" for k, fact in enumerate(facts, start=1))
            rows.append(
                {
                    "images": record["images"],
                    "problem": record["problem"],
                    "answer": record["answer"],
                    "visual_key_info": tagged,
                }
            )
    features = Features(
        {
            "images": List(Image()),
            "problem": Value("string"),
            "answer": Value("string"),
            "visual_key_info": Value("string"),
        }
    )
    Dataset.from_list(rows, features=features).to_parquet(str(path))
    return path


def write_collector_annotations(path: Path) -> Path:
    """The collector's form: jsonl rows with id, text, answer, status and an ``annotations`` list."""
    lines = []
    for index, (problem, answer, _, facts) in enumerate(TRAIN):
        if facts:
            lines.append(
                {"id": index, "problem": problem, "answer": answer, "status": "ok", "annotations": facts}
            )
    lines.append(
        {"id": 3, "problem": TRAIN[3][0], "answer": TRAIN[3][1], "status": "failed", "error": "timeout"}
    )
    lines.append(
        {
            "id": 99,
            "problem": "A problem not in the set.",
            "answer": "1",
            "status": "ok",
            "annotations": ["a fact"],
        }
    )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("geometry3k")
    records = geometry3k_records()
    write_hub_layout(root / "hub", records)
    write_save_to_disk(root / "disk", records)
    write_published_annotations(root / "published.parquet", records)
    write_collector_annotations(root / "collected.jsonl")
    return root


def offline_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)})
    return env


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--no-progress", *args],
        capture_output=True,
        text=True,
        env=offline_env(),
        cwd=str(REPO),
        timeout=240,
    )


def build(
    fixture_dir: Path, out: Path, *extra: str, source: str = "hub", annotations: str = "published.parquet"
):
    result = run_cli(
        "--source",
        str(fixture_dir / source),
        "--annotations",
        str(fixture_dir / annotations),
        "--out-dir",
        str(out),
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return result


def read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.fixture(scope="module")
def built(fixture_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    result = build(fixture_dir, out)
    (out / "summary.txt").write_text(result.stdout)
    return out


def test_rows_have_verl_layout_and_annotations(built):
    train = read_rows(built / "train.parquet")
    test = read_rows(built / "test.parquet")
    assert len(train) == len(TRAIN) and len(test) == len(TEST)
    for row, (problem, answer, _, facts) in zip(train, TRAIN, strict=True):
        assert row["data_source"] == DATA_SOURCE
        assert row["ability"] == "math"
        [message] = row["prompt"]
        assert message["role"] == "user"
        assert message["content"].count("<image>") == len(row["images"]) == 1
        assert message["content"].endswith(DEFAULT_INSTRUCTION)
        assert problem.replace("<image>", "") in message["content"]
        assert row["images"][0]["bytes"].startswith(b"\x89PNG")
        assert row["reward_model"] == {"style": "rule", "ground_truth": answer, "annotations": facts}
        assert row["extra_info"]["split"] == "train"
        assert row["extra_info"]["num_annotations"] == len(facts)
    assert [r["extra_info"]["index"] for r in train] == list(range(len(TRAIN)))
    assert all(r["reward_model"]["annotations"] == [] for r in test)
    # The problem without a placeholder got one in front; the JPEG was re-encoded as PNG.
    assert train[2]["prompt"][0]["content"].startswith("<image>Find the area")


def test_summary_table_reports_counts(built):
    summary = (built / "summary.txt").read_text()
    lines = summary.splitlines()
    assert lines[0].split()[:3] == ["output", "from", "splits"]
    train_line = next(line for line in lines if line.startswith("train "))
    # output, splits, rows in, rows out, annotated, min, mean, max
    assert train_line.split()[:8] == ["train", "train", "4", "4", "3", "1", "2.00", "3"]
    assert "matched 3, unmatched 0, ambiguous 0" in summary


def test_rerun_gives_identical_bytes(fixture_dir, built, tmp_path):
    build(fixture_dir, tmp_path)
    for name in ("train.parquet", "test.parquet"):
        assert (tmp_path / name).read_bytes() == (built / name).read_bytes()


def test_save_to_disk_source_and_collector_jsonl_give_the_same_files(fixture_dir, built, tmp_path):
    result = build(fixture_dir, tmp_path, source="disk", annotations="collected.jsonl")
    for name in ("train.parquet", "test.parquet"):
        assert (tmp_path / name).read_bytes() == (built / name).read_bytes()
    assert "skipped failed 1" in result.stdout
    assert "matched 3, unmatched 1, ambiguous 0" in result.stdout


def test_only_annotated_filters_train_output_only(fixture_dir, tmp_path):
    result = build(fixture_dir, tmp_path, "--only-annotated")
    train = read_rows(tmp_path / "train.parquet")
    assert [r["extra_info"]["index"] for r in train] == [0, 1, 2]
    assert all(r["reward_model"]["annotations"] for r in train)
    assert len(read_rows(tmp_path / "test.parquet")) == len(TEST)
    train_line = next(line for line in result.stdout.splitlines() if line.startswith("train "))
    assert train_line.split()[2:5] == ["4", "3", "3"]


def test_split_mapping_instruction_file_and_output_paths(fixture_dir, tmp_path):
    instruction = tmp_path / "instruction.txt"
    instruction.write_text("Answer in \\boxed{}.\n")
    train_out, test_out = tmp_path / "a" / "tr.parquet", tmp_path / "b" / "te.parquet"
    build(
        fixture_dir,
        tmp_path / "unused",
        "--splits",
        "train=train,validation=train,test=test",
        "--instruction-file",
        str(instruction),
        "--train-out",
        str(train_out),
        "--test-out",
        str(test_out),
    )
    train = read_rows(train_out)
    assert [(r["extra_info"]["split"], r["extra_info"]["index"]) for r in train] == [
        ("train", 0),
        ("train", 1),
        ("train", 2),
        ("train", 3),
        ("validation", 0),
    ]
    assert train[0]["prompt"][0]["content"] == "<image>Find x. Answer in \\boxed{}."
    assert len(read_rows(test_out)) == len(TEST)
    assert not (tmp_path / "unused").exists()


def test_text_only_records_match_on_answer_or_are_ambiguous(fixture_dir, tmp_path):
    """A record without images or id is matched by text and answer; text alone cannot pick a 'Find x.'."""
    path = tmp_path / "text_only.jsonl"
    circle = {"problem": TRAIN[2][0], "answer": TRAIN[2][1], "annotations": ["the circle has radius 5"]}
    path.write_text(json.dumps({"problem": "Find x.", "answer": "5", "annotations": ["AB = 13"]}) + "\n")
    result = build(fixture_dir, tmp_path / "out", annotations=str(path))
    assert "matched 1, unmatched 0, ambiguous 0" in result.stdout
    assert read_rows(tmp_path / "out" / "train.parquet")[0]["reward_model"]["annotations"] == ["AB = 13"]
    lines = [{"problem": "Find x.", "annotations": ["AB = 13"]}, circle]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = build(fixture_dir, tmp_path / "out", annotations=str(path))
    assert "matched 1, unmatched 0, ambiguous 1" in result.stdout
    assert [r["extra_info"]["num_annotations"] for r in read_rows(tmp_path / "out" / "train.parquet")] == [
        0,
        0,
        1,
        0,
    ]


def test_ignore_image_hash_still_matches_on_text_and_answer(fixture_dir, built, tmp_path):
    build(fixture_dir, tmp_path, "--ignore-image-hash")
    assert (tmp_path / "train.parquet").read_bytes() == (built / "train.parquet").read_bytes()


def test_no_match_at_all_is_an_error(fixture_dir, tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"problem": "Something else.", "annotations": ["a fact"]}) + "\n")
    result = run_cli(
        "--source", str(fixture_dir / "hub"), "--annotations", str(path), "--out-dir", str(tmp_path)
    )
    assert result.returncode == 2
    assert "no annotation from" in result.stderr and "'unmatched': 1" in result.stderr
    assert not (tmp_path / "train.parquet").exists()


# ---------------------------------------------------------------- bad input


def _bad_source(tmp_path: Path, index: int, **changes) -> Path:
    records = geometry3k_records()
    records["train"][index].update(changes)
    from datasets import Dataset

    root = tmp_path / "bad"
    (root / "data").mkdir(parents=True)
    for split, rows in records.items():
        shard = root / "data" / f"{split}-00000-of-00001.parquet"
        Dataset.from_list(rows, features=_features()).to_parquet(str(shard))
    return root


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"images": []},
            "split 'train' index 1 (id 1): missing image (a vision-language policy crashes verl at "
            "verl/models/transformers/qwen2_vl.py:393",
        ),
        (
            {"images": [{"bytes": b"not an image", "path": None}]},
            "split 'train' index 1 (id 1): unreadable image bytes",
        ),
        ({"problem": "  "}, "split 'train' index 1 (id 1): empty problem"),
        ({"answer": None}, "split 'train' index 1 (id 1): missing answer"),
    ],
)
def test_bad_source_rows_fail_naming_the_row(fixture_dir, built, tmp_path, changes, message):
    out = tmp_path / "out"
    out.mkdir()
    previous = (built / "train.parquet").read_bytes()
    (out / "train.parquet").write_bytes(previous)
    result = run_cli(
        "--source",
        str(_bad_source(tmp_path, 1, **changes)),
        "--annotations",
        str(fixture_dir / "published.parquet"),
        "--out-dir",
        str(out),
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert (out / "train.parquet").read_bytes() == previous
    assert sorted(p.name for p in out.iterdir()) == ["train.parquet"]


@pytest.mark.parametrize(
    ("annotations", "message"),
    [([1, 2], "annotation 0 is int, not text"), ({"a": 1}, "got dict")],
)
def test_annotations_that_are_not_text_fail_naming_the_row(fixture_dir, tmp_path, annotations, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": 0, "problem": "Find x.", "annotations": annotations}) + "\n")
    result = run_cli(
        "--source", str(fixture_dir / "hub"), "--annotations", str(path), "--out-dir", str(tmp_path / "out")
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "bad.jsonl row 0" in result.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- interruption


def test_failure_during_write_keeps_previous_output(fixture_dir, built, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    previous = {name: (built / name).read_bytes() for name in ("train.parquet", "test.parquet")}
    for name, data in previous.items():
        (out / name).write_bytes(b"previous " + data)
    calls = []

    def failing(parquet_writer, table):
        calls.append(table.num_rows)
        if len(calls) == 2:
            raise OSError("disk full (injected)")
        parquet_writer.write_table(table, row_group_size=writer.ROW_GROUP_SIZE)

    monkeypatch.setattr(writer, "_write_row_group", failing)
    code = cli.main(
        [
            "--no-progress",
            "--source",
            str(fixture_dir / "hub"),
            "--annotations",
            str(fixture_dir / "published.parquet"),
            "--out-dir",
            str(out),
        ]
    )
    assert code == 2
    assert len(calls) == 2  # train written in full, test failed midway
    for name, data in previous.items():
        assert (out / name).read_bytes() == b"previous " + data
    assert sorted(p.name for p in out.iterdir()) == ["test.parquet", "train.parquet"]


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from perception_verl.data import writer
    from data_prep import build_geometry3k as cli

    original = writer._write_row_group

    def held(parquet_writer, table):
        original(parquet_writer, table)
        print(sys.argv[1], flush=True)
        sys.stdin.read()  # held mid-write until the test kills the process

    writer._write_row_group = held
    sys.exit(cli.main(sys.argv[2:]))
    """
)


def test_sigkill_during_write_keeps_previous_output(fixture_dir, built, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    previous = {name: (built / name).read_bytes() for name in ("train.parquet", "test.parquet")}
    for name, data in previous.items():
        (out / name).write_bytes(data)
    marker = "MID-WRITE"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILL_SCRIPT,
            marker,
            "--no-progress",
            "--source",
            str(fixture_dir / "hub"),
            "--annotations",
            str(fixture_dir / "published.parquet"),
            "--instruction",
            "Changed.",
            "--out-dir",
            str(out),
        ],
        env=offline_env(),
        cwd=str(REPO),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        # Blocks until the child reports it is held mid-write (or exits: end of file).
        lines = iter(process.stdout.readline, "")
        assert any(line.strip() == marker for line in lines), "the build never reached the write"
        temps = [p for p in out.iterdir() if p.name.startswith(".pv-splits.")]
        assert len(temps) == 1 and temps[0].is_dir()  # the new set, staged in a fresh hidden folder
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for name, data in previous.items():
        assert (out / name).read_bytes() == data
    # A fresh run completes, removes the interrupted build's staged folder (naming it), and is not
    # affected by it.
    result = build(fixture_dir, out)
    assert f"removed a stale temporary of an interrupted build: {temps[0]}" in result.stderr
    assert not temps[0].exists()
    for name, data in previous.items():
        assert (out / name).read_bytes() == data


# ---------------------------------------------------------------- verl loads it


def test_verl_rlhf_dataset_loads_the_output(built, tmp_path, monkeypatch):
    import datasets
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn
    from verl.utils.tokenizer import hf_processor, hf_tokenizer

    from tests.support.tiny_processor import build_tiny_processor

    try:
        import qwen_vl_utils  # noqa: F401
    except ImportError:
        pytest.fail("qwen-vl-utils is missing: verl's RLHFDataset then drops every image row as 'overlong'")

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    model_dir = build_tiny_processor(tmp_path / "tiny")
    tokenizer = hf_tokenizer(str(model_dir))
    processor = hf_processor(str(model_dir))
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    config = OmegaConf.create(
        {
            "cache_dir": str(tmp_path / "verl_cache"),
            "prompt_key": "prompt",
            "image_key": "images",
            "max_prompt_length": 1024,
            "filter_overlong_prompts": True,
            # None: filter in this process. datasets forks a pool even for one worker, and a fork of
            # this multi-threaded test process (Ray, HTTP threads) can deadlock.
            "filter_overlong_prompts_workers": None,
            "return_raw_chat": True,
            "truncation": "error",
        }
    )
    dataset = RLHFDataset(str(built / "train.parquet"), tokenizer, config, processor=processor)
    assert len(dataset) == len(TRAIN)  # the overlong-prompt filter kept every row
    lengths = [dataset_prompt_length(dataset, i) for i in range(len(dataset))]
    assert all(0 < length <= 1024 for length in lengths)

    item = dataset[0]
    content = item["raw_prompt"][0]["content"]
    assert [part["type"] for part in content] == ["image", "text"]
    assert isinstance(content[0]["image"], Image.Image)
    assert content[1]["text"].startswith("Find x. ")
    assert item["reward_model"]["annotations"] == TRAIN[0][3]
    assert item["reward_model"]["ground_truth"] == "5"
    assert item["index"] == 0 and item["extra_info"]["split"] == "train"
    assert item["data_source"] == DATA_SOURCE
    batch = collate_fn([dataset[i] for i in range(len(dataset))])
    assert [rm["annotations"] for rm in batch["reward_model"]] == [facts for *_, facts in TRAIN]


def dataset_prompt_length(dataset, index: int) -> int:
    """The token count verl's overlong filter computes for one row (images expanded)."""
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    row = dataset.dataframe[index]
    messages = dataset._build_messages(row, key="prompt")
    text = dataset.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    images, videos, audios = dataset._process_multi_modal_info(
        messages, dataset.image_patch_size, dataset.config
    )
    inputs = build_multimodal_processor_inputs(
        dataset.processor, text=[text], images=images, videos=videos, audio=audios
    )
    return len(inputs["input_ids"][0])
