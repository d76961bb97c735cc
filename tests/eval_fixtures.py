"""Tiny copies of the four benchmarks in their hub layouts (parquet shards, PIL-drawn images)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw


def picture(seed: int) -> bytes:
    image = Image.new("RGB", (64, 48), "white")
    pen = ImageDraw.Draw(image)
    pen.polygon([(4 + seed, 40), (60, 40), (4 + seed, 6)], outline="black")
    pen.text((40, 4), str(seed), fill="blue")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if seed % 2 else "PNG")
    return buffer.getvalue()


def image_value(seed: int) -> dict[str, Any]:
    """How the hub's Image feature is stored in parquet: ``{"bytes", "path"}``."""
    return {"bytes": picture(seed), "path": f"images/{seed}.jpg"}


def mathvista_rows() -> list[dict[str, Any]]:
    meta = {
        "category": "math-targeted-vqa",
        "grade": "high school",
        "img_height": 48,
        "img_width": 64,
        "language": "english",
        "source": "Geometry3K",
        "split": "testmini",
    }
    return [
        {
            "pid": "1",
            "question": "Find the measure of angle A.",
            "image": "images/1.jpg",
            "decoded_image": image_value(1),
            "choices": ["30°", "45°", "60°", "90°"],
            "unit": None,
            "precision": None,
            "answer": "45°",
            "question_type": "multi_choice",
            "answer_type": "text",
            "metadata": {
                **meta,
                "context": "geometry diagram",
                "skills": ["geometry reasoning", "algebraic reasoning"],
                "task": "geometry problem solving",
            },
            "query": "...",
        },
        {
            "pid": "2",
            "question": "What is the length of side BC?",
            "image": "images/2.jpg",
            "decoded_image": image_value(2),
            "choices": None,
            "unit": "cm",
            "precision": 1.0,
            "answer": "3.5",
            "question_type": "free_form",
            "answer_type": "float",
            "metadata": {
                **meta,
                "context": "geometry diagram",
                "skills": ["geometry reasoning"],
                "task": "geometry problem solving",
            },
            "query": "...",
        },
        {
            "pid": "3",
            "question": "How many bars are taller than 5?",
            "image": "images/3.jpg",
            "decoded_image": image_value(3),
            "choices": None,
            "unit": None,
            "precision": None,
            "answer": "4",
            "question_type": "free_form",
            "answer_type": "integer",
            "metadata": {
                **meta,
                "context": "bar chart",
                "skills": ["statistical reasoning"],
                "task": "figure question answering",
            },
            "query": "...",
        },
    ]


def mathverse_rows() -> list[dict[str, Any]]:
    meta = {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"}
    return [
        {
            "sample_index": "1",
            "problem_index": "1",
            "problem_version": "Text Dominant",
            "question": "As shown in the figure, find angle 1.\nChoices:\nA:40°\nB:50°\nC:60°\nD:70°",
            "image": image_value(4),
            "answer": "B",
            "question_type": "multi-choice",
            "metadata": meta,
            "query_wo": "...",
            "query_cot": "...",
            "question_for_eval": "...",
        },
        {
            "sample_index": "2",
            "problem_index": "1",
            "problem_version": "Vision Only",
            "question": "",
            "image": image_value(5),
            "answer": "12",
            "question_type": "free-form",
            "metadata": meta,
            "query_wo": "...",
            "query_cot": "...",
            "question_for_eval": "...",
        },
    ]


def mathvision_rows() -> list[dict[str, Any]]:
    return [
        {
            "id": "1",
            "question": "<image1>Which shape comes next?",
            "options": ["A", "B", "C", "D", "E"],
            "image": "images/1.jpg",
            "decoded_image": image_value(6),
            "answer": "C",
            "solution": None,
            "level": 2,
            "subject": "logic",
        },
        {
            "id": "2",
            "question": "How many triangles are in the picture? <image1>",
            "options": [],
            "image": "images/2.jpg",
            "decoded_image": image_value(7),
            "answer": "6",
            "solution": None,
            "level": 1,
            "subject": "counting",
        },
    ]


def _wemath_row(
    problem: str, key: str, number: int, concept: str, question: str, option: str, answer: str
) -> dict[str, Any]:
    return {
        "ID": problem,
        "split": "testmini",
        "knowledge concept": concept,
        "question": question,
        "option": option,
        "answer": answer,
        "image_path": image_value(8 + number),
        "key": key,
        "question number": number,
        "knowledge concept description": "...",
    }


def wemath_rows() -> list[dict[str, Any]]:
    """A two-step and a three-step problem as We-Math's testmini lays them out.

    The rows of one composite problem share ``ID``; ``key`` says which part each row is
    (``<N>steps_<i>``: one-step sub-problem ``i``, ``<N>steps_multi``: the composite problem); rows are
    in the hub's order (by key, then problem).
    """
    rect, circle = "Perimeter of rectangles", "Area of circles"
    return [
        _wemath_row("2steps_1", "2steps_1", 1, rect, "How long is it?", "A. 3 cm; B. 4 cm; C. 5 cm", "B"),
        _wemath_row("2steps_1", "2steps_2", 2, rect, "How wide is it?", "A. 2 cm; B. 3 cm", "A"),
        _wemath_row(
            "2steps_1",
            "2steps_multi",
            3,
            rect,
            "What is the perimeter of the rectangle?",
            "A. 10 cm; B. 12 cm; C. 14 cm",
            "B",
        ),
        _wemath_row("3steps_1", "3steps_1", 4, circle, "Its radius?", "A. 1 cm; B. 2 cm; C. 3 cm", "B"),
        _wemath_row("3steps_1", "3steps_2", 5, circle, "What is the diameter?", "A. 4 cm; B. 6 cm", "A"),
        _wemath_row(
            "3steps_1", "3steps_3", 6, circle, "What is the circumference?", "A. 12.56 cm; B. 6.28 cm", "A"
        ),
        _wemath_row(
            "3steps_1",
            "3steps_multi",
            7,
            circle,
            "What is the area of the circle (π = 3.14)?",
            "A. 12.56 cm²;B. 25.12 cm²;C. 6.28 cm²; D. No correct answer",
            "A",
        ),
    ]


_IMAGE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


def _write(rows: list[dict[str, Any]], path: Path, image_columns: tuple[str, ...]) -> Path:
    table = pa.Table.from_pylist(rows)
    for name in image_columns:
        table = table.set_column(
            table.schema.get_field_index(name), name, pa.array([row[name] for row in rows], type=_IMAGE)
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def write_hub_layouts(root: Path) -> dict[str, Path]:
    """Each benchmark as its hub repository lays it out; returns ``{name: folder}``."""
    folders = {name: root / name for name in ("mathvista", "mathverse", "mathvision", "wemath")}
    _write(
        mathvista_rows(),
        folders["mathvista"] / "data" / "testmini-00000-of-00001-725687bf7a18d64b.parquet",
        ("decoded_image",),
    )
    _write(mathverse_rows(), folders["mathverse"] / "testmini.parquet", ("image",))
    _write(
        mathvision_rows(),
        folders["mathvision"] / "data" / "test-00000-of-00001-3532b8d3f1b4047a.parquet",
        ("decoded_image",),
    )
    write_wemath(wemath_rows(), folders["wemath"])
    return folders


def write_wemath(rows: list[dict[str, Any]], folder: Path) -> Path:
    """WeMath rows as its hub layout (one ``testmini.parquet``)."""
    return _write(rows, folder / "testmini.parquet", ("image_path",))


def build_all(root: Path, out: Path) -> dict[str, Path]:
    """Convert every fixture with the CLI; returns ``{name: parquet}``."""
    from data_prep import build_benchmarks

    folders = write_hub_layouts(root)
    args = ["--out-dir", str(out), "--no-progress"]
    for name, folder in folders.items():
        args += ["--source", f"{name}={folder}"]
    assert build_benchmarks.main(args) == 0
    return {name: out / f"{name}.parquet" for name in folders}
