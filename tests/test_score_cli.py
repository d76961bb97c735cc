"""The offline scoring CLI: python -m perception_verl.score."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from perception_verl import score
from perception_verl.judge.lexical import lexical_verdicts

REPO = Path(__file__).resolve().parents[1]

GOOD = "<think>\nJKLM is a parallelogram, so angle K = 71.\n</think>\n<answer>\n\\boxed{71^\\circ}\n</answer>"
ROWS = [
    {
        "response": GOOD,
        "ground_truth": "71",
        "annotations": "<info1>JKLM is a parallelogram</info1><info2>AB is perpendicular to CD</info2>",
    },
    {"response": "the answer is \\boxed{0.75}", "ground_truth": "\\frac{3}{4}"},
    {"response": "\ud800\x00 junk", "ground_truth": 3, "annotations": ["JKLM is a parallelogram"]},
    {"response": "", "ground_truth": "1", "annotations": []},
]


def write_jsonl(path: Path, rows: list[object], blank_after_first: bool = False) -> Path:
    lines = [json.dumps(row) for row in rows]
    if blank_after_first:
        lines.insert(1, "   ")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perception_verl.score", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_json_end_to_end_with_the_lexical_judge(tmp_path):
    path = write_jsonl(tmp_path / "gen.jsonl", ROWS, blank_after_first=True)
    proc = run_cli("--input", str(path), "--judge", "lexical", "--json")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    rows, summary = records[:-1], records[-1]
    assert [row["type"] for row in rows] == ["row"] * 4
    assert [row["line"] for row in rows] == [1, 3, 4, 5]  # the blank line 2 is skipped, numbering kept

    first = rows[0]
    expected = list(lexical_verdicts(["JKLM is a parallelogram", "AB is perpendicular to CD"], GOOD))
    assert first["verdicts"] == expected
    assert expected == [1, 0]
    assert first["perception"] == pytest.approx(0.5)
    assert first["score"] == pytest.approx(0.9 + 0.1 + 0.7 * 0.5)
    assert (first["accuracy_reason"], first["num_annotations"]) == ("correct", 2)

    second = rows[1]
    assert (second["perception"], second["perception_excluded"], second["verdicts"]) == (None, True, None)
    assert second["score"] == pytest.approx(0.9)

    assert rows[2]["accuracy"] == 0.0
    assert rows[2]["num_annotations"] == 1
    assert rows[3]["perception_excluded"] is True

    assert summary["type"] == "summary"
    assert summary["judge"] == "lexical"
    counts = (summary["rows"], summary["rows_with_annotations"], summary["rows_without_annotations"])
    assert counts == (4, 2, 2)
    assert summary["rows_perception_scored"] == 2
    perceptions = [row["perception"] for row in rows if row["perception"] is not None]
    assert summary["mean_perception"] == pytest.approx(sum(perceptions) / 2)
    assert summary["mean_score"] == pytest.approx(sum(row["score"] for row in rows) / 4)
    assert summary["weights"]["perception"] == 0.7


def test_table_end_to_end_without_a_judge(tmp_path):
    path = write_jsonl(tmp_path / "gen.jsonl", ROWS)
    proc = run_cli("--input", str(path), "--judge", "none")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["line", "score", "acc", "fmt", "perc", "rep", "ann", "reason"]
    assert lines[1].split() == ["1", "1.000", "1", "1", "-", "0.000", "2", "correct"]
    assert lines[2].split() == ["2", "0.900", "1", "0", "-", "0.000", "0", "correct"]
    assert "rows: 4 (2 with annotations, 2 without)" in proc.stdout
    assert "perception: not judged (--judge none)" in proc.stdout
    assert proc.stderr == ""


def test_bad_input_exits_2_naming_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n", encoding="utf-8")
    proc = run_cli("--input", str(path), "--judge", "none")
    assert proc.returncode == 2
    assert f"{path}:line 2: not valid JSON" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"ground_truth": "1"}\n', "line 1: missing key 'response'"),
        (b'{"response": "x"}\n', "line 1: missing key 'ground_truth'"),
        (b'{"response": 5, "ground_truth": "1"}\n', "line 1: 'response' must be text, got int"),
        (b'{"response": "x", "ground_truth": null}\n', "line 1: 'ground_truth' must be text or a number"),
        (b'{"response": "x", "ground_truth": true}\n', "line 1: 'ground_truth' must be text or a number"),
        (b'\n\n{"response": "x", "ground_truth": 1, "annotations": ["ok", 3]}', "line 3: bad 'annotations'"),
        (b'{"response": "x", "ground_truth": "1", "annotations": {"a": 1}}\n', "line 1: bad 'annotations'"),
        (b'["response", "ground_truth"]\n', "line 1: expected a JSON object, got list"),
        (b'{"response": "x", "ground_truth": "1"}\n{"response": "\xff"}\n', "line 2: not valid UTF-8"),
    ],
)
def test_bad_rows(tmp_path, capsys, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    assert score.main(["--input", str(path), "--judge", "none"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert score.main(["--input", str(missing), "--judge", "lexical"]) == 2
    assert f"cannot read {missing}" in capsys.readouterr().err


def test_empty_file_has_an_undefined_summary(tmp_path, capsys):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n \n", encoding="utf-8")
    assert score.main(["--input", str(path), "--judge", "lexical", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["rows"] == 0
    assert summary["mean_score"] is None
    assert summary["mean_perception"] is None


def test_missing_lexical_judge_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "perception_verl.judge.lexical", None)  # makes the import fail
    path = write_jsonl(tmp_path / "gen.jsonl", ROWS[:1])
    assert score.main(["--input", str(path), "--judge", "lexical"]) == 2
    assert "use --judge none" in capsys.readouterr().err


def test_unknown_judge_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        score.main(["--input", str(tmp_path / "x.jsonl"), "--judge", "gpt"])
    assert exc.value.code == 2


def test_the_judge_must_be_named(tmp_path, capsys):
    path = write_jsonl(tmp_path / "gen.jsonl", ROWS[:1])
    with pytest.raises(SystemExit) as exc:
        score.main(["--input", str(path)])
    assert exc.value.code == 2
    assert "--judge" in capsys.readouterr().err
