"""Labelling saved generations: reading them, thresholds, failure handling, atomic output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from perception_verl.analysis.generations import (
    GenerationFileError,
    GenerationKeys,
    parse_generation_lines,
    perception_label,
    read_generations,
)
from perception_verl.analysis.label_perception import label_generations, write_jsonl_atomic
from perception_verl.analysis.labels import read_labels
from perception_verl.judge.base import Judge, JudgeResult


class ScriptedJudge:
    """A Judge whose answer per response text is scripted; records how many calls overlap."""

    def __init__(self, answers: dict[str, JudgeResult | Exception]) -> None:
        self.answers = answers
        self.calls: list[tuple[tuple[str, ...], str]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def start(self) -> None:
        return None

    async def judge(self, annotations: Sequence[str], response: str) -> JudgeResult:
        self.calls.append((tuple(annotations), response))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            answer = self.answers[response]
            if isinstance(answer, Exception):
                raise answer
            return answer
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        return None


def lines(*rows: object) -> list[str]:
    return [json.dumps(row) for row in rows]


# --- reading generations ----------------------------------------------------------------------


def test_reads_list_and_info_tag_annotations_and_missing_ones() -> None:
    rows = parse_generation_lines(
        lines(
            {"id": 1, "response": "r1", "annotations": ["AB = 3", " ", "angle C = 90"]},
            {"id": "two", "response": "r2", "annotations": "<info2>B</info2><info1>A</info1>"},
            {"id": 3, "response": "r3"},
            {"id": 4, "response": "r4", "annotations": None},
            {"id": 5, "response": "r5", "annotations": []},
        ),
        source="g.jsonl",
    )
    assert [row.annotations for row in rows] == [("AB = 3", "angle C = 90"), ("A", "B"), (), (), ()]
    assert [row.id for row in rows] == [1, "two", 3, 4, 5]
    assert [row.line for row in rows] == [1, 2, 3, 4, 5]


def test_custom_keys() -> None:
    keys = GenerationKeys(id="uid", response="output", annotations="visual_key_info")
    (row,) = parse_generation_lines(
        lines({"uid": "q7", "output": "text", "visual_key_info": "<info1>x</info1>"}), source="g", keys=keys
    )
    assert (row.id, row.response, row.annotations) == ("q7", "text", ("x",))
    with pytest.raises(GenerationFileError, match=r"g:1: missing key 'uid'"):
        parse_generation_lines(lines({"id": 1, "output": "t"}), source="g", keys=keys)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": 9, "response": None}, r"g:2: 'response' must be text, got NoneType"),
        ({"id": 9}, r"g:2: missing key 'response'"),
        ({"id": 1.5, "response": "r"}, r"g:2: 'id' must be a string or an integer"),
        ({"id": 9, "response": "r", "annotations": [1, 2]}, r"g:2: annotation 0 is int, not text in row 9"),
        ({"id": 9, "response": "r", "annotations": {"a": 1}}, r"g:2: annotations must be a list"),
        ({"id": 0, "response": "again"}, r"g:2: duplicate id 0 \(first seen on line 1\)"),
    ],
)
def test_bad_generation_rows_name_the_line(row: dict[str, object], message: str) -> None:
    with pytest.raises(GenerationFileError, match=message):
        parse_generation_lines(lines({"id": 0, "response": "ok"}, row), source="g")


def test_unreadable_generations_file(tmp_path: Path) -> None:
    with pytest.raises(GenerationFileError, match=r"nope\.jsonl: cannot read"):
        read_generations(tmp_path / "nope.jsonl")


# --- thresholds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdicts", "threshold", "expected"),
    [
        ((1, 1, 1), 1.0, (1.0, True)),
        ((1, 0, 1), 1.0, (2 / 3, False)),
        ((1, 0, 1), 2 / 3, (2 / 3, True)),
        ((1,) * 7 + (0,) * 3, 0.7, (0.7, True)),
        ((1,) * 6 + (0,) * 4, 0.7, (0.6, False)),
        ((0, 0), 0.5, (0.0, False)),
    ],
)
def test_perception_label(verdicts: tuple[int, ...], threshold: float, expected: tuple[float, bool]) -> None:
    perception, correct = perception_label(verdicts, threshold)
    assert perception == pytest.approx(expected[0])
    assert correct is expected[1]


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.01])
def test_bad_threshold(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        perception_label((1,), threshold)


# --- labelling with a judge --------------------------------------------------------------------


def test_labels_skips_and_failures_are_kept_apart() -> None:
    rows = parse_generation_lines(
        lines(
            {"id": "all", "response": "all", "annotations": ["a", "b"]},
            {"id": "half", "response": "half", "annotations": ["a", "b"]},
            {"id": "none-ann", "response": "x"},
            {"id": "timeout", "response": "timeout", "annotations": ["a"]},
            {"id": "short", "response": "short", "annotations": ["a", "b", "c"]},
            {"id": "boom", "response": "boom", "annotations": ["a"]},
            {"id": "zero", "response": "zero", "annotations": "<info1>a</info1>"},
        ),
        source="g",
    )
    judge = ScriptedJudge(
        {
            "all": JudgeResult(verdicts=(1, 1)),
            "half": JudgeResult(verdicts=(1, 0)),
            "timeout": JudgeResult(verdicts=None, failure="timeout"),
            "short": JudgeResult(verdicts=(1, 1)),
            "boom": RuntimeError("judge bug"),
            "zero": JudgeResult(verdicts=(0,)),
        }
    )
    assert isinstance(judge, Judge)
    done: list[int] = []
    outcome = asyncio.run(label_generations(judge, rows, on_done=lambda: done.append(1)))
    assert outcome.labels == [
        {"id": "all", "correct": True, "perception": 1.0, "num_annotations": 2},
        {"id": "half", "correct": False, "perception": 0.5, "num_annotations": 2},
        {"id": "zero", "correct": False, "perception": 0.0, "num_annotations": 1},
    ]
    assert outcome.skipped == ["none-ann"]
    assert [(f.id, f.kind) for f in outcome.failures] == [
        ("timeout", "timeout"),
        ("short", "wrong_count"),
        ("boom", "raised_RuntimeError"),
    ]
    assert len(judge.calls) == 6  # the row without annotations never reaches the judge
    assert len(done) == 6
    summary = outcome.summary(len(rows))
    assert summary["rows"] == 7
    assert (summary["labelled"], summary["correct"], summary["skipped_no_annotations"]) == (3, 1, 1)
    assert summary["judge_failures"] == 3
    assert summary["judge_failure_kinds"] == {"raised_RuntimeError": 1, "timeout": 1, "wrong_count": 1}


def test_threshold_passes_through_and_concurrency_is_bounded() -> None:
    rows = parse_generation_lines(
        lines(*({"id": i, "response": f"r{i}", "annotations": ["a", "b", "c", "d"]} for i in range(20))),
        source="g",
    )
    judge = ScriptedJudge({f"r{i}": JudgeResult(verdicts=(1, 1, 1, i % 2)) for i in range(20)})
    outcome = asyncio.run(label_generations(judge, rows, threshold=0.75, concurrency=3))
    assert all(label["correct"] for label in outcome.labels)
    assert [label["id"] for label in outcome.labels] == list(range(20))
    assert 1 < judge.max_in_flight <= 3

    strict = asyncio.run(label_generations(ScriptedJudge(judge.answers), rows))
    assert [label["correct"] for label in strict.labels] == [i % 2 == 1 for i in range(20)]


def test_label_generations_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        asyncio.run(label_generations(ScriptedJudge({}), [], concurrency=0))
    with pytest.raises(ValueError, match="threshold"):
        asyncio.run(label_generations(ScriptedJudge({}), [], threshold=0.0))


# --- output --------------------------------------------------------------------------------------


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "labels.jsonl"
    write_jsonl_atomic(out, [{"id": 1, "correct": True}])
    write_jsonl_atomic(out, [{"id": 2, "correct": False}, {"id": "3", "correct": True}])
    assert read_labels(out) == {2: False, "3": True}
    assert sorted(p.name for p in out.parent.iterdir()) == ["labels.jsonl"]


def test_atomic_write_keeps_old_file_when_a_row_cannot_be_written(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    write_jsonl_atomic(out, [{"id": 1, "correct": True}])
    with pytest.raises(TypeError):
        write_jsonl_atomic(out, [{"id": 2, "correct": True}, {"id": 3, "correct": object()}])
    assert read_labels(out) == {1: True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.jsonl"]
