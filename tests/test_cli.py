"""The console script ``perception-verl <command>``: dispatch, help, and the shared flag spellings."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from perception_verl import cli
from perception_verl.annotate.cli import build_parser as annotate_parser
from perception_verl.launch.preflight import parse_args as preflight_args

REPO = Path(__file__).resolve().parents[1]
GOOD = "<think>\nJKLM is a parallelogram, so angle K = 71.\n</think>\n<answer>\n\\boxed{71}\n</answer>"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_pyproject_declares_one_console_script() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"perception-verl": "perception_verl.cli:main"}  # score is `perception-verl score`


def test_help_lists_every_command() -> None:
    proc = run("-m", "perception_verl", "--help")
    assert proc.returncode == 0, proc.stderr
    for name, (module, _) in cli.COMMANDS.items():
        assert f"  {name} " in proc.stdout
        assert f"python -m {module}" in proc.stdout


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_module_has_a_main(name: str) -> None:
    module = importlib.import_module(cli.COMMANDS[name][0])
    assert callable(module.main)


def test_unknown_or_missing_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err
    assert cli.main([]) == 2


def test_score_through_the_console_script_matches_python_m(tmp_path: Path) -> None:
    rows = [{"response": GOOD, "ground_truth": "71", "annotations": ["JKLM is a parallelogram"]}]
    path = tmp_path / "gen.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    via_cli = run("-m", "perception_verl", "score", "--input", str(path), "--judge", "lexical", "--json")
    via_module = run("-m", "perception_verl.score", "--input", str(path), "--judge", "lexical", "--json")
    assert via_cli.returncode == 0, via_cli.stderr
    assert via_cli.stdout == via_module.stdout
    assert json.loads(via_cli.stdout.splitlines()[0])["type"] == "row"


def test_exit_status_of_the_command_is_passed_on(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.jsonl")
    args = ("--input", missing, "--judge", "none")
    proc = run("-m", "perception_verl", "score", *args)
    assert proc.returncode != 0
    assert proc.returncode == run("-m", "perception_verl.score", *args).returncode


def test_preflight_takes_the_common_judge_flags_and_the_old_ones() -> None:
    new = preflight_args(["--judge-url", "http://a:1,http://b:2", "--judge-model", "M"])
    old = preflight_args(["--urls", "http://a:1,http://b:2", "--model", "M"])
    assert (new.urls, new.model) == (old.urls, old.model) == ("http://a:1,http://b:2", "M")


def test_collect_annotations_takes_out_and_output() -> None:
    common = ["--input", "x", "--solver-url", "http://s", "--solver-model", "S"]
    common += ["--extractor-url", "http://e", "--extractor-model", "E"]
    assert annotate_parser().parse_args([*common, "--out", "o.jsonl"]).output == Path("o.jsonl")
    assert annotate_parser().parse_args([*common, "--output", "o.jsonl"]).output == Path("o.jsonl")
