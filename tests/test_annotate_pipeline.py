"""The annotation pipeline end to end against loopback OpenAI-compatible servers (real HTTP)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from perception_verl.annotate.cli import main
from perception_verl.annotate.pipeline import PipelineConfig, run_pipeline
from perception_verl.annotate.sources import load_problems
from perception_verl.annotate.store import ResultStore, read_rows
from perception_verl.client import ChatClient, ChatClientConfig
from tests.support.loopback import LoopbackServer, closed_port_url
from tests.support.scripted_openai import ScriptedExtractor, ScriptedProblem, ScriptedSolver, make_script

REPO = Path(__file__).resolve().parents[1]
SOLVER_MODEL = "scripted-vl"
EXTRACTOR_MODEL = "scripted-text"


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 9), (index * 17 % 256, 40, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_input(path: Path, script: dict[str, ScriptedProblem]) -> Path:
    problems = list(script.values())
    table = pa.table(
        {
            "id": [index for index, _ in enumerate(problems)],
            "problem": [p.question for p in problems],
            "answer": [p.answer for p in problems],
            "images": [[{"bytes": _png(index), "path": None}] for index, _ in enumerate(problems)],
        }
    )
    pq.write_table(table, path)
    return path


@dataclass
class Endpoints:
    solver: LoopbackServer
    extractor: LoopbackServer
    solver_script: ScriptedSolver
    extractor_script: ScriptedExtractor


@contextmanager
def endpoints(script: dict[str, ScriptedProblem]) -> Iterator[Endpoints]:
    solver_script, extractor_script = ScriptedSolver(script), ScriptedExtractor(script)
    with (
        LoopbackServer(solver_script, model=SOLVER_MODEL) as solver,
        LoopbackServer(extractor_script, model=EXTRACTOR_MODEL) as extractor,
    ):
        yield Endpoints(solver, extractor, solver_script, extractor_script)


def cli_args(input_path: Path, output: Path, ends: Endpoints, *extra: str) -> list[str]:
    return [
        "--input", str(input_path),
        "--output", str(output),
        "--solver-url", ends.solver.url,
        "--solver-model", SOLVER_MODEL,
        "--extractor-url", ends.extractor.url,
        "--extractor-model", EXTRACTOR_MODEL,
        "--samples", "2",
        "--max-retries", "0",
        "--timeout", "60",
        "--no-progress",
        *extra,
    ]  # fmt: skip


def test_small_run_end_to_end(tmp_path, capsys):
    script = make_script(6, wrong=(2,), malformed=(4,))
    input_path = write_input(tmp_path / "train.parquet", script)
    output = tmp_path / "annotations.jsonl"
    with endpoints(script) as ends:
        assert main(cli_args(input_path, output, ends)) == 0
        solver_calls, extractor_calls = dict(ends.solver_script.calls), dict(ends.extractor_script.calls)
        images_seen = ends.solver_script.images

    rows = read_rows(output)
    assert [row["id"] for row in rows] == list(range(6))
    for index in (0, 1, 3, 5):
        problem = script[f"P{index}"]
        assert rows[index] == {
            "id": index,
            "problem": problem.question,
            "answer": problem.answer,
            "annotations": list(problem.facts),
            "solution": problem.solution(right=True),
            "solver_model": SOLVER_MODEL,
            "extractor_model": EXTRACTOR_MODEL,
            "status": "ok",
            "samples": 2,
            "verified": 2,
        }
    assert rows[2]["status"] == "failed" and rows[2]["stage"] == "filter"
    assert rows[2]["reason"].startswith("none of 2 solutions verified")
    assert rows[4] == {
        "id": 4,
        "status": "failed",
        "stage": "extract",
        "reason": "malformed extraction after 2 attempts: "
        "the reply is not valid JSON (Expecting value at position 0)",
    }
    assert solver_calls == {f"P{i}": 2 for i in range(6)}
    assert extractor_calls == {"P0": 1, "P1": 1, "P3": 1, "P4": 2, "P5": 1}
    for index in range(6):
        assert images_seen[f"P{index}"] == [[_png(index)], [_png(index)]]

    summary = json.loads(capsys.readouterr().out)
    assert summary["total"] == 6 and summary["skipped"] == 0
    assert (summary["solved"], summary["kept"], summary["extracted"], summary["failed"]) == (6, 5, 4, 2)
    assert summary["failed_by_stage"] == {"filter": 1, "extract": 1}
    assert summary["reasks"] == 1 and summary["finalized"] is True

    with endpoints(script) as ends:
        assert main(cli_args(input_path, output, ends)) == 0
        assert sum(ends.solver_script.calls.values()) == 0
    assert read_rows(output) == rows
    assert json.loads(capsys.readouterr().out)["skipped"] == 6


async def _run(problems, output, ends, config):
    solver = ChatClient(ChatClientConfig(urls=(ends.solver.url,), model=SOLVER_MODEL, max_retries=0))
    extractor = ChatClient(ChatClientConfig(urls=(ends.extractor.url,), model=EXTRACTOR_MODEL, max_retries=0))
    try:
        with ResultStore(output) as store:
            return await run_pipeline(problems, store, solver, extractor, config, progress=False)
    finally:
        await solver.close()
        await extractor.close()


def test_unusable_extraction_is_reasked_then_recorded_failed_with_its_reason(tmp_path):
    script = make_script(3, malformed=(0,))
    script["P1"] = replace(script["P1"], extractor="fix_on_reask")
    script["P2"] = replace(script["P2"], solver="alternate")
    problems = load_problems([str(write_input(tmp_path / "in.parquet", script))], split="train")
    output = tmp_path / "out.jsonl"
    config = PipelineConfig(SOLVER_MODEL, EXTRACTOR_MODEL, samples=2, reask=1)
    with endpoints(script) as ends:
        summary = asyncio.run(_run(problems, output, ends, config))
        extraction_bodies = [b for b in ends.extractor.received if "P0" in b["messages"][1]["content"]]
        extractor_calls = dict(ends.extractor_script.calls)
    rows = {row["id"]: row for row in read_rows(output)}
    assert rows[0]["status"] == "failed" and rows[0]["stage"] == "extract"
    assert rows[0]["reason"].startswith("malformed extraction after 2 attempts: the reply is not valid JSON")
    assert rows[1]["status"] == "ok" and rows[1]["annotations"] == list(script["P1"].facts)
    assert list(rows[1])[:3] == ["id", "split", "problem"] and rows[1]["split"] == "train"
    assert rows[2]["status"] == "ok" and rows[2]["verified"] == 1
    assert rows[2]["solution"] == script["P2"].solution(right=True)
    assert extractor_calls == {"P0": 2, "P1": 2, "P2": 1}
    second = extraction_bodies[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert "not valid JSON" in second[3]["content"]
    assert all(body["temperature"] == 0.0 for body in extraction_bodies)
    assert summary.reasks == 2 and summary.failed_by_stage == {"extract": 1}


def test_solver_failures_are_recorded_and_retried_only_with_retry_failed(tmp_path, capsys):
    script = make_script(2)
    input_path = write_input(tmp_path / "in.parquet", script)
    output = tmp_path / "out.jsonl"
    with endpoints(script) as ends:
        ends.solver.fail_rate = 1.0
        assert main(cli_args(input_path, output, ends)) == 0
        assert read_rows(output)[0] == {
            "id": 0,
            "status": "failed",
            "stage": "solve",
            "reason": "all 2 solve requests failed (http_500 x2)",
        }
        ends.solver.fail_rate = 0.0
        assert main(cli_args(input_path, output, ends)) == 0
        assert [row["status"] for row in read_rows(output)] == ["failed", "failed"]
        assert main(cli_args(input_path, output, ends, "--retry-failed")) == 0
    rows = read_rows(output)
    assert [(row["id"], row["status"]) for row in rows] == [(0, "ok"), (1, "ok")]
    capsys.readouterr()


def test_unreachable_endpoint_fails_fast_naming_it(tmp_path, caplog):
    script = make_script(1)
    input_path = write_input(tmp_path / "in.parquet", script)
    dead = closed_port_url()
    with endpoints(script) as ends, caplog.at_level(logging.ERROR):
        args = cli_args(input_path, tmp_path / "out.jsonl", ends)
        args[args.index("--extractor-url") + 1] = dead
        assert main([*args, "--health-timeout-s", "2"]) == 1
        assert sum(ends.solver_script.calls.values()) == 0
    assert dead in caplog.text


def _wait_for_rows(path: Path, count: int, process: subprocess.Popen, deadline_s: float = 120.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert process.poll() is None, f"collector exited early with {process.returncode}"
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} rows")


def test_killed_midway_and_restarted_gives_the_same_file_as_an_uninterrupted_run(tmp_path, capsys):
    script = make_script(10, wrong=(3,), malformed=(8,))
    input_path = write_input(tmp_path / "in.parquet", script)
    reference, resumed = tmp_path / "reference.jsonl", tmp_path / "resumed.jsonl"
    fast = {f"P{i}" for i in range(5)}

    def slow_after_five(body: dict) -> float:
        text = body["messages"][-1]["content"][-1]["text"]
        return 0.0 if text.split(":")[0] in fast else 120.0

    with endpoints(script) as ends:
        assert main(cli_args(input_path, reference, ends, "--problems-in-flight", "2")) == 0

        ends.solver.latency_fn = slow_after_five
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        command = [sys.executable, str(REPO / "data_prep" / "collect_annotations.py")]
        command += cli_args(input_path, resumed, ends, "--problems-in-flight", "2", "--log-level", "WARNING")
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_for_rows(resumed, 5, process)
            assert process.poll() is None
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait(timeout=30)
            process.stderr.close()
        assert process.returncode == -signal.SIGKILL
        killed_rows = read_rows(resumed)
        assert sorted(row["id"] for row in killed_rows) == [0, 1, 2, 3, 4]
        with open(resumed, "a", encoding="utf-8") as handle:
            handle.write('{"id": 5, "problem": "torn by the ki')

        ends.solver.latency_fn = None
        ends.solver_script.calls.clear()
        assert main(cli_args(input_path, resumed, ends, "--problems-in-flight", "2")) == 0
        restart_calls = dict(ends.solver_script.calls)

    assert resumed.read_bytes() == reference.read_bytes()
    rows = read_rows(resumed)
    assert [row["id"] for row in rows] == list(range(10))
    assert [row["status"] for row in rows].count("ok") == 8
    assert set(restart_calls) == {f"P{i}" for i in range(5, 10)}
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["skipped"] == 5 and summary["processed"] == 5


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_finished_rows_and_the_rerun_completes(tmp_path, capsys):
    script = make_script(6)
    input_path = write_input(tmp_path / "in.parquet", script)
    output = tmp_path / "out.jsonl"

    def slow_after_two(body: dict) -> float:
        text = body["messages"][-1]["content"][-1]["text"]
        return 0.0 if text.split(":")[0] in ("P0", "P1") else 120.0

    with endpoints(script) as ends:
        ends.solver.latency_fn = slow_after_two
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        command = [sys.executable, str(REPO / "data_prep" / "collect_annotations.py")]
        command += cli_args(input_path, output, ends, "--problems-in-flight", "2", "--log-level", "WARNING")
        # A job started in the background by a non-interactive shell inherits SIGINT ignored, and Python
        # then installs no KeyboardInterrupt handler: give the child the default, as a terminal would.
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint
        )
        try:
            _wait_for_rows(output, 2, process)
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
            process.wait(timeout=30)
        assert process.returncode == 130, stderr.decode()[-2000:]
        assert stdout == b""
        assert b"rerun the same command to resume" in stderr
        assert sorted(row["id"] for row in read_rows(output)) == [0, 1]

        ends.solver.latency_fn = None
        assert main(cli_args(input_path, output, ends)) == 0
    assert [row["id"] for row in read_rows(output)] == list(range(6))
    capsys.readouterr()


def test_output_is_read_by_the_dataset_builders_annotation_loader(tmp_path, capsys):
    from perception_verl.data.annotation_source import load_annotation_records

    script = make_script(3, wrong=(1,))
    input_path = write_input(tmp_path / "in.parquet", script)
    output = tmp_path / "out.jsonl"
    with endpoints(script) as ends:
        assert main(cli_args(input_path, output, ends, "--split", "train")) == 0
    load = load_annotation_records(str(output), progress=False)
    assert (load.rows_read, load.skipped_failed) == (3, 1)
    assert [(r.id, r.split, r.annotations) for r in load.records] == [
        ("0", "train", script["P0"].facts),
        ("2", "train", script["P2"].facts),
    ]
    assert load.records[0].problem == script["P0"].question and load.records[0].answer == script["P0"].answer
    capsys.readouterr()
