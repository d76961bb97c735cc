"""Every ``perception-verl`` command documents itself: a one-line purpose, its options and a runnable example.

The CLI page of the docs (docs/cli.md, scripts/gen_docs.py) is generated from the same parsers.
"""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from perception_verl import __version__, cli

REPO = Path(__file__).resolve().parents[1]
DRY_RUNS = ("dry-run", "eval-dry-run")  # hydra overrides, passed on as given: no options to parse


def parser_of(name: str):
    return importlib.import_module(cli.COMMANDS[name][0]).build_parser()


def examples(epilog: str, name: str) -> list[list[str]]:
    """The ``perception-verl NAME ...`` commands of an epilog, continuation lines joined, as argv lists."""
    text = re.sub(r"\\\n\s*", " ", epilog)
    lines = [line.strip() for line in text.splitlines()]
    return [shlex.split(line)[2:] for line in lines if line.startswith(f"perception-verl {name} ")]


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_has_a_purpose_and_an_example(name: str) -> None:
    parser = parser_of(name)
    purpose = (parser.description or "").strip().splitlines()
    assert purpose and purpose[0].strip(), f"{name}: no description"
    assert (parser.epilog or "").startswith("example:"), f"{name}: the epilog must start with 'example:'"
    assert "example:" in parser.format_help()
    if name not in DRY_RUNS:
        assert examples(parser.epilog, name), f"{name}: no 'perception-verl {name} ...' line in its example"


@pytest.mark.parametrize("name", sorted(set(cli.COMMANDS) - set(DRY_RUNS)))
def test_every_example_parses(name: str) -> None:
    parser = parser_of(name)
    for argv in examples(parser.epilog, name):
        parser.parse_args(argv)  # SystemExit (exit 2) names the option that drifted


def test_version_has_one_source_and_the_cli_prints_it() -> None:
    assert version("perception-verl") == __version__
    proc = subprocess.run(
        [sys.executable, "-m", "perception_verl", "--version"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"perception-verl {__version__}\n"
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = {attr = "perception_verl.__version__"}' in pyproject
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{__version__}]" in changelog
