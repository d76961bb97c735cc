"""The README's GPU quick start, command by command as written, on CPU.

The fenced block under "## Quick start on GPUs" is read from README.md (docs/getting-started.md holds
the same block: checked here too) and run in order in one bash session (``HOME`` is a temporary
folder, so ``~/data/...`` lands there). What cannot run here is replaced, and only that: ``pip
install`` (this environment is installed), the judge launch (needs a GPU: the loopback judge serves
instead, and the ``export JUDGE_URL=`` line points at it), the hub (``--source``/``--annotations`` name
a fixture in the hub layout whose published annotations cover the train split only) and the training
command itself (needs GPUs). Every ``DRY_RUN=1`` command must pass, and the block must hold the data
build and a dry run in each ``JUDGE_MODE``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.fake_sglang import JUDGE_MODEL, fake_sglang
from tests.test_data_build import _features, draw_diagram

REPO = Path(__file__).resolve().parents[1]
TRAIN_PROBLEMS = 130  # one full batch of the recipe's 128 prompts, plus two
SHAPES = ("triangle", "square", "circle", "lines")


def quick_start_commands(readme: str) -> list[str]:
    """The commands of the first bash block after the "## Quick start on GPUs" heading."""
    section = readme.split("## Quick start on GPUs", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no bash block under '## Quick start on GPUs'"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_getting_started_page_has_the_same_quick_start() -> None:
    readme = quick_start_commands((REPO / "README.md").read_text(encoding="utf-8"))
    page = quick_start_commands((REPO / "docs" / "getting-started.md").read_text(encoding="utf-8"))
    assert page == readme, "docs/getting-started.md's quick start differs from the README's"


def _records(split: str, count: int, seed0: int) -> list[dict]:
    return [
        {
            "images": [{"bytes": draw_diagram(SHAPES[i % 4], seed0 + i), "path": None}],
            "problem": f"<image>Find x in figure {split}-{i}.",
            "answer": str(i + 1),
            "id": i,
            "choices": ["1", "2", "3", "4"],
            "ground_truth": "A",
        }
        for i in range(count)
    ]


def write_hub_fixture(root: Path) -> tuple[Path, Path]:
    """Geometry3K in the hub layout, and the published annotations (train only) in the hub layout."""
    from datasets import Dataset, Features, Image, List, Value

    source = root / "geometry3k"
    (source / "data").mkdir(parents=True)
    splits = {"train": _records("train", TRAIN_PROBLEMS, 0), "test": _records("test", 6, 1000)}
    for split, rows in splits.items():
        Dataset.from_list(rows, features=_features()).to_parquet(
            str(source / "data" / f"{split}-00000-of-00001.parquet")
        )
    annotations = root / "published"
    (annotations / "data").mkdir(parents=True)
    published = [
        {
            "images": row["images"],
            "problem": row["problem"],
            "answer": row["answer"],
            "visual_key_info": f"<info1>figure {i} has a {SHAPES[i % 4]}</info1><info2>x = {i + 1}</info2>",
        }
        for i, row in enumerate(splits["train"])
    ]
    features = Features(
        {
            "images": List(Image()),
            "problem": Value("string"),
            "answer": Value("string"),
            "visual_key_info": Value("string"),
        }
    )
    Dataset.from_list(published, features=features).to_parquet(
        str(annotations / "data" / "train-00000-of-00001.parquet")
    )
    return source, annotations


def adapt(command: str, *, source: Path, annotations: Path, judge_url: str) -> tuple[str, str | None]:
    """(kind, the command to run or None to skip) for one README command."""
    words = shlex.split(command)
    if words[:2] == ["pip", "install"]:
        return "install", None
    if "recipes/launch_sglang_judge.sh" in words:
        return "judge", None
    if words[0] == "export":
        return "export", re.sub(r"JUDGE_URL=\S+", f"JUDGE_URL={judge_url}", command)
    if "data_prep/build_geometry3k.py" in words:
        extra = f" --source {shlex.quote(str(source))} --annotations {shlex.quote(str(annotations))}"
        return "data", command + extra
    if "DRY_RUN=1" in words:
        mode = next((w.split("=", 1)[1] for w in words if w.startswith("JUDGE_MODE=")), "external")
        return f"dry-run:{mode}", command
    if "recipes/run_qwen25vl_7b.sh" in words:
        return "train", None
    raise AssertionError(f"README quick start: a command this test does not know: {command!r}")


def test_the_readme_quick_start_runs_as_written(tmp_path: Path) -> None:
    commands = quick_start_commands((REPO / "README.md").read_text(encoding="utf-8"))
    source, annotations = write_hub_fixture(tmp_path / "fixture")
    home = tmp_path / "home"
    home.mkdir()
    drop = ("JUDGE_MODE", "JUDGE_URL", "JUDGE_MODEL", "PERCEPTION_WEIGHT", "DRY_RUN", "DATA_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        {
            "HOME": str(home),
            "PYTHON": sys.executable,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": str(REPO),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
        }
    )
    kinds: list[str] = []
    with fake_sglang() as judge:
        script = ["set -euo pipefail"]
        for command in commands:
            kind, runnable = adapt(command, source=source, annotations=annotations, judge_url=judge.url)
            kinds.append(kind)
            if runnable is not None:
                script += [f"echo {shlex.quote('>>> ' + kind)}", runnable]
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert {"data", "export", "dry-run:external", "dry-run:verl", "dry-run:lexical"} <= set(kinds), kinds
    assert kinds.index("data") < min(i for i, k in enumerate(kinds) if k.startswith("dry-run"))
    assert output.count("DRY RUN OK: ready to train") == 3
    assert f"{JUDGE_MODEL} healthy at {judge.url}" in output
    assert "perception is not part of validation" in output
    assert "1 steps per epoch (130 rows // data.train_batch_size=128" in output
    assert (home / "data" / "geometry3k_perception" / "train.parquet").is_file()
