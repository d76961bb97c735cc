"""Loading problems to annotate from parquet and JSONL files with configurable columns."""

from __future__ import annotations

import base64
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from perception_verl.annotate.sources import Columns, load_problems
from perception_verl.data.loading import SourceError


def _image(fmt: str = "PNG", color=(0, 90, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 7), color).save(buffer, format=fmt)
    return buffer.getvalue()


def test_geometry3k_shaped_parquet(tmp_path):
    png = _image()
    table = pa.table(
        {
            "id": [7, 8],
            "problem": ["<image>Find x.", "<image>Find y."],
            "answer": ["3", "4.5"],
            "images": [
                [{"bytes": png, "path": None}],
                [{"bytes": png, "path": "b.png"}, {"bytes": png, "path": None}],
            ],
        }
    )
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(table, path)
    problems = load_problems([str(path)])
    assert [p.id for p in problems] == [7, 8]
    assert problems[0].question == "<image>Find x."
    assert problems[1].answer == "4.5"
    assert problems[0].images == (png,)
    assert len(problems[1].images) == 2
    assert problems[0].split is None
    assert [p.split for p in load_problems([str(path)], split="train")] == ["train", "train"]


def test_jsonl_with_custom_columns_base64_paths_and_jpeg(tmp_path):
    jpeg = _image("JPEG")
    png = _image()
    (tmp_path / "fig.png").write_bytes(png)
    rows = [
        {"qid": "a", "q": "Find x.", "gt": 3, "img": base64.b64encode(jpeg).decode()},
        {
            "qid": "b",
            "q": "Find y.",
            "gt": "2",
            "img": ["fig.png", {"bytes": base64.b64encode(png).decode()}],
        },
    ]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    problems = load_problems([str(path)], Columns(id="qid", question="q", answer="gt", image="img"))
    assert [p.id for p in problems] == ["a", "b"]
    assert problems[0].answer == "3"
    assert problems[0].images[0].startswith(b"\x89PNG")
    assert problems[1].images == (png, png)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": 1, "problem": "Find x.", "answer": "3"}, "no column 'images'"),
        ({"id": 1, "problem": "Find x.", "answer": "3", "images": []}, "no image"),
        (
            {"id": 1, "problem": "  ", "answer": "3", "images": "AAAA"},
            "column 'problem': missing or not text",
        ),
        ({"id": None, "problem": "Find x.", "answer": "3", "images": "AAAA"}, "id column 'id' holds None"),
        (
            {"id": 1, "problem": "Find x.", "answer": "3", "images": "%%%"},
            "neither an existing file nor base64",
        ),
        ({"id": 1, "problem": "Find x.", "answer": "3", "images": "AAAA"}, "cannot be decoded"),
    ],
)
def test_bad_records_are_named(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(SourceError, match=message) as caught:
        load_problems([str(path)])
    assert "bad.jsonl row 0" in str(caught.value)


def test_duplicate_ids_across_files_are_rejected(tmp_path):
    row = {"id": 5, "problem": "Find x.", "answer": "3", "images": base64.b64encode(_image()).decode()}
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text(json.dumps(row) + "\n")
    with pytest.raises(SourceError, match="id 5 already used at"):
        load_problems([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])


def test_hub_style_shard_folder_with_a_split(tmp_path):
    png = _image()
    for split, ids in (("train", [1, 2]), ("test", [3])):
        table = pa.table(
            {
                "id": ids,
                "problem": [f"<image>Find x{i}." for i in ids],
                "answer": ["1"] * len(ids),
                "images": [[{"bytes": png, "path": None}]] * len(ids),
            }
        )
        (tmp_path / "data").mkdir(exist_ok=True)
        pq.write_table(table, tmp_path / "data" / f"{split}-00000-of-00001.parquet")
    problems = load_problems([str(tmp_path)], split="train")
    assert [(p.id, p.split) for p in problems] == [(1, "train"), (2, "train")]
    assert sorted(p.id for p in load_problems([str(tmp_path)])) == [1, 2, 3]
