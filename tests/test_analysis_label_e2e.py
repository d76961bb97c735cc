"""label_perception end to end: lexical judge and the loopback SGLang server, then McNemar on the labels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from perception_verl.analysis.label_perception import main as label_main
from perception_verl.analysis.labels import read_labels
from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang
from tests.support.loopback import closed_port_url

REPO = Path(__file__).resolve().parents[1]

FACTS = {
    "p1": ["AB = 12", "angle ACB = 90 degrees"],
    "p2": ["triangle DEF is isosceles", "DE = DF"],
    "p3": ["the circle has radius 5"],
    "p4": ["JK = 3f - 6", "JKLM is a parallelogram"],
    "p5": ["BC = 7"],
    "p6": ["angle ABC = 40 degrees"],
}
OFF_TOPIC = "<think>\nLet me guess.\n</think>\n<answer>\nThe answer is \\boxed{3}.\n</answer>"


def quoting(facts: list[str]) -> str:
    """A response that states every fact word for word (any judge reading it sees all of them)."""
    body = "\n".join(f"We see that {fact}" for fact in facts)
    return f"<think>\n{body} So the result follows.\n</think>\n<answer>\n\\boxed{{4}}\n</answer>"


def write_generations(path: Path, states: dict[str, str]) -> Path:
    """``states[id]`` is "all" (quote every fact), "none" (off topic) or "first" (quote only the first)."""
    rows = []
    for problem, facts in FACTS.items():
        state = states[problem]
        response = {"all": quoting(facts), "none": OFF_TOPIC, "first": quoting(facts[:1])}[state]
        rows.append({"id": problem, "response": response, "annotations": facts})
    rows.append({"id": "no-facts", "response": OFF_TOPIC, "annotations": []})
    rows.append({"id": "tagged", "response": quoting(["EF = 2"]), "annotations": "<info1>EF = 2</info1>"})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


BASE = {"p1": "none", "p2": "none", "p3": "none", "p4": "first", "p5": "all", "p6": "none"}
TRAINED = {"p1": "all", "p2": "all", "p3": "all", "p4": "all", "p5": "all", "p6": "none"}


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_lexical_labels_then_mcnemar(tmp_path: Path) -> None:
    outs = {}
    for name, states in (("base", BASE), ("trained", TRAINED)):
        generations = write_generations(tmp_path / f"{name}.gen.jsonl", states)
        outs[name] = tmp_path / f"{name}.labels.jsonl"
        summary = last_json(
            run_module(
                "perception_verl.analysis.label_perception",
                "--generations",
                str(generations),
                "--out",
                str(outs[name]),
                "--judge",
                "lexical",
                "--json",
                "--no-progress",
            )
        )
        assert (summary["rows"], summary["labelled"], summary["skipped_no_annotations"]) == (8, 7, 1)
        assert summary["skipped_examples"] == ["no-facts"]
        assert summary["judge_failures"] == 0

    expected_base = {"p1": False, "p2": False, "p3": False, "p4": False, "p5": True, "p6": False}
    expected_trained = {"p1": True, "p2": True, "p3": True, "p4": True, "p5": True, "p6": False}
    assert read_labels(outs["base"]) == {**expected_base, "tagged": True}
    assert read_labels(outs["trained"]) == {**expected_trained, "tagged": True}
    rows = [json.loads(line) for line in outs["base"].read_text().splitlines()]
    assert rows[3] == {
        "id": "p4",
        "correct": False,
        "perception": 0.5,
        "num_annotations": 2,
        "judge": "lexical",
    }

    result = last_json(
        run_module(
            "perception_verl.analysis.mcnemar",
            "--labels-a",
            str(outs["base"]),
            "--labels-b",
            str(outs["trained"]),
            "--json",
        )
    )
    assert result["table"] == {
        "both_correct": 2,
        "a_correct_b_wrong": 0,
        "a_wrong_b_correct": 4,
        "both_wrong": 1,
    }
    assert result["p_value"] == pytest.approx(2 / 16)  # 2 * P[Bin(4, 1/2) <= 0]
    assert result["significant"] is False


def test_threshold_lets_partial_perception_count(tmp_path: Path) -> None:
    generations = write_generations(tmp_path / "gen.jsonl", BASE)
    out = tmp_path / "labels.jsonl"
    assert (
        label_main(
            [
                "--generations",
                str(generations),
                "--out",
                str(out),
                "--threshold",
                "0.5",
                "--judge",
                "lexical",
                "--no-progress",
            ]
        )
        == 0
    )
    assert read_labels(out)["p4"] is True


def test_sglang_judge_over_loopback_server(tmp_path: Path) -> None:
    generations = write_generations(tmp_path / "gen.jsonl", TRAINED)
    lexical_out = tmp_path / "lexical.jsonl"
    assert (
        label_main(
            [
                "--generations",
                str(generations),
                "--out",
                str(lexical_out),
                "--judge",
                "lexical",
                "--no-progress",
            ]
        )
        == 0
    )
    with fake_sglang() as server:
        out = tmp_path / "sglang.jsonl"
        summary = last_json(
            run_module(
                "perception_verl.analysis.label_perception",
                "--generations",
                str(generations),
                "--out",
                str(out),
                "--judge",
                "sglang",
                "--judge-url",
                server.url,
                "--judge-model",
                JUDGE_MODEL,
                "--concurrency",
                "4",
                "--constrained",
                "--json",
                "--no-progress",
            )
        )
        chat_requests = server.routes["/v1/chat/completions"]
        bodies = list(server.received)
    assert summary["labelled"] == 7
    assert summary["judge_failures"] == 0
    assert summary["judge_metrics"]["judged"] == 7
    # the loopback judge answers with lexical verdicts, so the labels match the offline judge's;
    # each file records which judge labelled it
    assert summary["judge"] == f"sglang:{JUDGE_MODEL}@{server.url}"
    sglang_rows = [json.loads(line) for line in out.read_text().splitlines()]
    lexical_rows = [json.loads(line) for line in lexical_out.read_text().splitlines()]
    assert {r.pop("judge") for r in sglang_rows} == {summary["judge"]}
    assert {r.pop("judge") for r in lexical_rows} == {"lexical"}
    assert sglang_rows == lexical_rows
    assert chat_requests == 7  # one request per response with annotations
    assert all(body["model"] == JUDGE_MODEL and "regex" in body for body in bodies)


def test_judge_failures_are_reported_not_labelled(tmp_path: Path) -> None:
    generations = write_generations(tmp_path / "gen.jsonl", TRAINED)
    out = tmp_path / "labels.jsonl"
    with fake_sglang(fail_rate=1.0) as server:
        summary = last_json(
            run_module(
                "perception_verl.analysis.label_perception",
                "--generations",
                str(generations),
                "--out",
                str(out),
                "--judge",
                "sglang",
                "--judge-url",
                server.url,
                "--judge-model",
                JUDGE_MODEL,
                "--max-retries",
                "0",
                "--json",
                "--no-progress",
            )
        )
    assert summary["labelled"] == 0
    assert summary["judge_failures"] == 7
    assert summary["judge_failure_kinds"] == {"http_500": 7}
    assert summary["skipped_no_annotations"] == 1
    assert out.read_text() == ""  # nothing labelled: no fake "incorrect" rows


def test_unreachable_judge_exits_with_clear_error(tmp_path: Path) -> None:
    generations = write_generations(tmp_path / "gen.jsonl", TRAINED)
    out = tmp_path / "labels.jsonl"
    url = closed_port_url()
    proc = run_module(
        "perception_verl.analysis.label_perception",
        "--generations",
        str(generations),
        "--out",
        str(out),
        "--judge",
        "sglang",
        "--judge-url",
        url,
        "--judge-model",
        JUDGE_MODEL,
        "--no-progress",
        "--health-timeout-s",
        "2",
    )
    assert proc.returncode == 3
    assert "judge unavailable" in proc.stderr
    assert url in proc.stderr
    assert not out.exists()


def test_bad_generations_and_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generations = tmp_path / "gen.jsonl"
    generations.write_text('{"id": 1, "response": "a"}\n{"id": 1, "response": "b"}\n')
    out = tmp_path / "labels.jsonl"
    assert label_main(["--generations", str(generations), "--out", str(out), "--judge", "lexical"]) == 2
    assert "gen.jsonl:2: duplicate id 1" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        label_main(["--generations", str(generations), "--out", str(out), "--judge", "sglang"])
    assert "--judge sglang needs --judge-url and --judge-model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        label_main(
            ["--generations", str(generations), "--out", str(out), "--judge", "lexical", "--threshold", "0"]
        )
    assert "--threshold must be in (0, 1]" in capsys.readouterr().err
