"""Unit tests of the data modules: prompt text, images, matching, annotation rows, parquet writes."""

from __future__ import annotations

import io
import json
import os

import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep.build_geometry3k import parse_split_map
from perception_verl.data import writer
from perception_verl.data.annotation_source import record_from_row
from perception_verl.data.annotations import AnnotationError
from perception_verl.data.geometry3k import BuildReport, OutputSummary, convert_row, format_summary
from perception_verl.data.images import ImageDataError, MissingImageError, decode_image, decode_images
from perception_verl.data.loading import SourceError, load_split_rows
from perception_verl.data.matching import (
    AnnotationRecord,
    ProblemKeys,
    match_annotations,
    normalise_answer,
    normalise_problem,
)
from perception_verl.data.schema import (
    ROW_SCHEMA,
    ConvertedProblem,
    RowError,
    build_row,
    build_user_text,
    check_instruction,
)


def encoded(fmt: str, color: str = "red", size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


# ---------------------------------------------------------------- prompt text


def test_user_text_keeps_one_placeholder_per_image_and_appends_instruction():
    assert build_user_text("<image>Find x.", 1, "Think.", where="w") == "<image>Find x. Think."
    assert build_user_text("Find x.", 1, "Think.", where="w") == "<image>Find x. Think."
    assert build_user_text("<image>A <image>B", 2, "", where="w") == "<image>A <image>B"


@pytest.mark.parametrize(
    ("problem", "images", "message"),
    [
        ("<image><image>Find x.", 1, "w: problem has 2 <image> placeholders but 1 images"),
        ("<image>Find x. <video>", 1, "w: problem text contains '<video>'"),
    ],
)
def test_user_text_rejects_placeholder_mismatch(problem, images, message):
    with pytest.raises(RowError, match=message):
        build_user_text(problem, images, "Think.", where="w")


def test_instruction_may_not_carry_placeholders():
    assert check_instruction("  Think.\n") == "Think."
    with pytest.raises(ValueError, match="must not contain '<image>'"):
        check_instruction("Look at <image> again.")


def test_build_row_layout():
    problem = ConvertedProblem("train", 3, "17", "<image>Find x.", "5", (b"png",), ("h",))
    row = build_row(problem, ["AB = 5"], "Think.")
    assert row["prompt"] == [{"role": "user", "content": "<image>Find x. Think."}]
    assert row["images"] == [{"bytes": b"png"}]
    assert row["reward_model"] == {"style": "rule", "ground_truth": "5", "annotations": ["AB = 5"]}
    assert row["extra_info"] == {
        "split": "train",
        "index": 3,
        "id": "17",
        "problem": "Find x.",
        "answer": "5",
        "num_annotations": 1,
    }


# ---------------------------------------------------------------- images


def test_png_bytes_are_kept_and_other_formats_become_png():
    png = encoded("PNG")
    assert decode_image({"bytes": png, "path": None}).png == png
    bmp = decode_image(encoded("BMP"))
    assert bmp.png.startswith(b"\x89PNG")
    assert bmp.pixel_hash == decode_image(png).pixel_hash  # same pixels, different file format
    assert decode_image(encoded("PNG", "blue")).pixel_hash != decode_image(png).pixel_hash
    assert decode_image(Image.open(io.BytesIO(png))).pixel_hash == decode_image(png).pixel_hash


def test_image_paths_and_missing_entries(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(encoded("PNG"))
    assert decode_image({"bytes": None, "path": str(path)}).png == path.read_bytes()
    assert decode_images(None) == []
    with pytest.raises(MissingImageError, match="image 1: image entry is None"):
        decode_images([str(path), None])
    with pytest.raises(MissingImageError, match="does not exist"):
        decode_image(str(tmp_path / "nope.png"))
    with pytest.raises(MissingImageError, match="neither bytes nor a path"):
        decode_image({"bytes": None, "path": None})


def test_unreadable_image_bytes():
    with pytest.raises(ImageDataError, match="cannot be decoded"):
        decode_image(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ImageDataError, match="empty"):
        decode_image(b"")
    with pytest.raises(ImageDataError, match="unsupported image value of type int"):
        decode_image(3)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"problem": "Find x.", "answer": "5", "images": None}, "missing image"),
        ({"problem": "Find x.", "answer": "5", "images": [{"bytes": b"xx"}]}, "unreadable image bytes"),
        ({"problem": "<image> ", "answer": "5", "images": [encoded("PNG")]}, "empty problem"),
        ({"problem": "Find x.", "answer": " ", "images": [encoded("PNG")]}, "missing answer"),
    ],
)
def test_convert_row_errors_name_the_row(row, message):
    with pytest.raises(RowError, match=rf"^split 'test' index 4 \(id 9\): {message}"):
        convert_row("test", 4, {"id": 9, **row})


# ---------------------------------------------------------------- matching


def keys(split, index, problem, answer, image, row_id=None):
    return ProblemKeys((split, index), row_id, normalise_problem(problem), normalise_answer(answer), (image,))


PROBLEMS = [
    keys("train", 0, "<image>Find x.", "5", "img-a", "0"),
    keys("train", 1, "<image>Find  X.", "7", "img-b", "1"),
    keys("train", 2, "<image>Find x.", "5", "img-a", "2"),  # exact duplicate of row 0
    keys("test", 0, "<image>Find y.", "3", "img-c", "0"),
]


def test_normalisation():
    assert normalise_problem("<image>Find  X.\n") == "find x."
    assert normalise_answer(" $2 \\sqrt{3}$ ") == "2\\sqrt{3}"


def test_match_by_text_answer_image_and_duplicates():
    records = [
        AnnotationRecord("r0", ("f1",), problem="Find x.", answer="5", image_hashes=("img-a",)),
        AnnotationRecord("r1", ("f2",), problem="find x.", answer="7"),
        AnnotationRecord("r2", ("f3",), problem="Find x.", answer="5", image_hashes=("img-z",)),
    ]
    report = match_annotations(PROBLEMS, records)
    assert report.assigned == {("train", 0): ("f1",), ("train", 1): ("f2",), ("train", 2): ("f1",)}
    assert report.matched == ["r0", "r1"] and report.unmatched == ["r2"]
    # Without image hashes r2 matches the same duplicate pair, with other facts: a conflict.
    report = match_annotations(PROBLEMS, records, use_images=False)
    assert report.conflicting == [("train", 0), ("train", 2)]
    assert report.assigned == {("train", 1): ("f2",)}


def test_match_by_id_and_split_and_ambiguity():
    records = [
        AnnotationRecord("by-id", ("a",), id="0"),
        AnnotationRecord("by-id-split", ("b",), id="0", split="test"),
        AnnotationRecord("text-only", ("c",), problem="Find x."),
        AnnotationRecord("no-key", ("d",), answer="5"),
        AnnotationRecord("wrong-text", ("e",), id="1", problem="Find y."),
    ]
    report = match_annotations(PROBLEMS, records)
    assert report.ambiguous == ["by-id", "text-only"]
    assert report.matched == ["by-id-split"]
    assert report.unmatched == ["no-key", "wrong-text"]
    assert report.assigned == {("test", 0): ("b",)}
    assert report.counts() == {
        "matched": 1,
        "unmatched": 2,
        "ambiguous": 2,
        "conflicting_rows": 0,
        "annotated_rows": 1,
    }


# ---------------------------------------------------------------- annotation rows


def test_annotation_rows_in_both_published_forms():
    columns = ("visual_key_info", "annotations")
    tagged = record_from_row(
        {"problem": "Find x.", "answer": 5, "visual_key_info": "<info2>b</info2><info1>a</info1>"},
        "row 0",
        annotation_columns=columns,
    )
    assert tagged.annotations == ("a", "b") and tagged.answer == "5" and tagged.id is None
    listed = record_from_row(
        {"id": 7, "annotations": [" a ", ""], "status": "ok"}, "row 1", annotation_columns=columns
    )
    assert listed.annotations == ("a",) and listed.id == "7" and listed.problem is None
    assert record_from_row({"id": 7, "status": "failed"}, "row 2", annotation_columns=columns) is None


def test_annotation_row_errors():
    with pytest.raises(SourceError, match=r"row 3: no annotation column .*row has \['facts', 'id'\]"):
        record_from_row({"id": 1, "facts": ["a"]}, "row 3", annotation_columns=("annotations",))
    with pytest.raises(AnnotationError, match="annotation 1 is int, not text in row 'row 4'"):
        record_from_row({"annotations": ["a", 2]}, "row 4", annotation_columns=("annotations",))
    with pytest.raises(SourceError, match="row 5: image 0: image bytes cannot be decoded"):
        record_from_row(
            {"annotations": ["a"], "images": [b"junk"]}, "row 5", annotation_columns=("annotations",)
        )


# ---------------------------------------------------------------- loading


def test_missing_splits_are_named(tmp_path):
    (tmp_path / "data").mkdir()
    pq.write_table(
        pq.read_table(_tiny_parquet(tmp_path / "x.parquet")),
        tmp_path / "data" / "train-00000-of-00001.parquet",
    )
    assert len(load_split_rows(str(tmp_path), ["train"])["train"]) == 1
    with pytest.raises(SourceError, match=r"no parquet shards for split\(s\) \['test'\]"):
        load_split_rows(str(tmp_path), ["train", "test"])
    with pytest.raises(SourceError, match="a single file holds one split, but 2 were requested"):
        load_split_rows(str(tmp_path / "x.parquet"), ["train", "test"])


def test_shards_are_found_at_the_top_or_in_data_only_and_outputs_are_refused(tmp_path):
    from perception_verl.data.loading import split_shards

    for name in (
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
        "test.parquet",
        "out/train.parquet",
        "validation/0000.parquet",
        "train_extra.parquet",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        _tiny_parquet(tmp_path / name)
    assert [p.relative_to(tmp_path).as_posix() for p in split_shards(tmp_path, "train")] == [
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
    ]
    assert split_shards(tmp_path, "validation") == [tmp_path / "validation" / "0000.parquet"]
    with pytest.raises(SourceError, match=r"test\.parquet is both an input and an output of this build"):
        load_split_rows(str(tmp_path), ["train", "test"], exclude=[tmp_path / "test.parquet"])


def test_bad_jsonl_line_is_named(tmp_path):
    from perception_verl.data.loading import read_file_rows

    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"id": 1}) + "\n{not json\n")
    with pytest.raises(SourceError, match=r"a\.jsonl:2: not valid JSON"):
        read_file_rows(path)


def _tiny_parquet(path):
    import pyarrow as pa

    pq.write_table(pa.table({"problem": ["p"], "answer": ["1"]}), path)
    return path


# ---------------------------------------------------------------- writing


def _rows(n: int) -> list[dict]:
    problem = ConvertedProblem("train", 0, "0", "<image>Find x.", "5", (encoded("PNG"),), ("h",))
    return [build_row(problem, ["a"] * (i % 3), "Think.") for i in range(n)]


def test_parquet_bytes_depend_only_on_rows(tmp_path):
    rows = _rows(writer.ROW_GROUP_SIZE + 5)
    writer.write_outputs_atomically({tmp_path / "a.parquet": rows}, ROW_SCHEMA)
    writer.write_outputs_atomically({tmp_path / "b.parquet": rows}, ROW_SCHEMA)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    metadata = pq.ParquetFile(tmp_path / "a.parquet").metadata
    assert metadata.num_row_groups == 2 and metadata.num_rows == len(rows)
    assert set(metadata.metadata) == {b"ARROW:schema"}  # no pandas or timestamp entries
    assert pq.read_table(tmp_path / "a.parquet").to_pylist() == rows


def test_failed_write_leaves_destinations_and_no_temporary_files(tmp_path, monkeypatch):
    first, second = tmp_path / "a.parquet", tmp_path / "sub" / "b.parquet"
    first.write_bytes(b"old")

    def broken(parquet_writer, table):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_write_row_group", broken)
    with pytest.raises(KeyboardInterrupt):
        writer.write_outputs_atomically({first: _rows(2), second: _rows(2)}, ROW_SCHEMA)
    assert first.read_bytes() == b"old"
    assert not second.exists()
    assert sorted(os.listdir(tmp_path)) == ["a.parquet"]


def test_duplicate_destinations_are_refused(tmp_path):
    with pytest.raises(ValueError, match="share one destination"):
        writer.write_outputs_atomically({tmp_path / "a": [], str(tmp_path / "a"): []}, ROW_SCHEMA)


# ---------------------------------------------------------------- CLI helpers and summary


def test_split_map_parsing():
    assert parse_split_map("train=train, validation=train,test=test") == {
        "train": "train",
        "validation": "train",
        "test": "test",
    }
    for bad in ("train", "train=", "train=a,train=b"):
        with pytest.raises(Exception, match="split"):
            parse_split_map(bad)


def test_summary_table():
    report = BuildReport(
        outputs=[OutputSummary("train", "/x/train.parquet", ("train",), 10, 7, 7, 2, 4.5, 8)]
    )
    lines = format_summary(report).splitlines()
    assert lines[0].split() == [
        "output",
        "from",
        "splits",
        "rows",
        "in",
        "rows",
        "out",
        "annotated",
        "ann",
        "min",
        "ann",
        "mean",
        "ann",
        "max",
        "path",
    ]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["train", "train", "10", "7", "7", "2", "4.50", "8", "/x/train.parquet"]
