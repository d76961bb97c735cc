"""The README stays a two-minute read and the documentation site stays true to the code.

- README.md: at most 10 KB; its first screen holds the two commands and the GPU recipe; it names every
  docs page, and its relative links resolve.
- docs/configuration.md: every reward option has a description (a docstring line under its field),
  and the generated table and docs/cli.md match the code (scripts/gen_docs.py).
- docs/metrics.md names every ``reward/*`` step metric the manager's extras produce.
- mkdocs.yml's nav and docs/*.md agree, and ``mkdocs build --strict`` passes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FIRST_SCREEN_LINES = 60


def gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nav_pages() -> list[str]:
    """The Markdown files mkdocs.yml's nav names (one ``- Title: page.md`` per line)."""
    text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1]
    return re.findall(r"^\s+- [^:]+: (\S+\.md)\s*$", nav, re.MULTILINE)


# README ---------------------------------------------------------------------------------------------


def test_the_readme_is_at_most_10_kb() -> None:
    size = README.stat().st_size
    assert size <= 10 * 1024, f"README.md is {size} bytes; move details into docs/ (limit 10 KB)"


def test_the_first_screen_has_the_two_commands_and_the_gpu_recipe() -> None:
    first = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN_LINES])
    for needed in (
        "arxiv.org/abs/2506.07218",
        "0.9 * accuracy + 0.1 * format + 0.7 * perception + repetition_penalty",
        "bash scripts/demo.sh",
        "bash scripts/test.sh",
        "pip install -e .",
        "python data_prep/build_geometry3k.py",
        "recipes/launch_sglang_judge.sh",
        "DRY_RUN=1 bash recipes/run_qwen25vl_7b.sh",
        "bash recipes/run_qwen25vl_7b.sh",
        "reward.reward_manager.module.path=pkg://perception_verl.integration.manager",
    ):
        assert needed in first, f"README's first {FIRST_SCREEN_LINES} lines lack {needed!r}"


def test_the_readme_links_every_docs_page_and_its_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    missing = [link for link in local if not (REPO / link).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"
    unlinked = [page for page in nav_pages() if f"docs/{page}" not in local]
    assert not unlinked, f"README has no line for docs page(s) {unlinked}"


# Configuration -------------------------------------------------------------------------------------


def test_every_reward_option_has_a_description() -> None:
    from perception_verl.config import PerceptionRewardConfig
    from perception_verl.rewards.total import RewardWeights

    docs = gen_docs()
    assert docs.undocumented(PerceptionRewardConfig) == []
    assert docs.undocumented(RewardWeights) == []
    table = docs.options_table()
    for field in dataclasses.fields(RewardWeights):
        assert f"| `weights.{field.name}` |" in table
    for field in dataclasses.fields(PerceptionRewardConfig):
        assert field.name == "weights" or f"| `{field.name}` |" in table


def test_every_accepted_key_is_a_documented_field() -> None:
    from perception_verl import config

    fields = {field.name for field in dataclasses.fields(config.PerceptionRewardConfig)}
    assert set(config._KEYS) == fields


def test_an_option_without_a_description_stops_the_generator() -> None:
    docs = gen_docs()

    @dataclasses.dataclass(frozen=True)
    class Options:
        documented: int = 1
        """Has a description."""
        forgotten: float = 2.0

    assert docs.undocumented(Options) == ["forgotten"]
    assert docs.field_docs(Options) == {"documented": "Has a description."}


def test_the_generated_pages_are_current() -> None:
    stale = [
        str(path.relative_to(REPO))
        for path, text in gen_docs().pages().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"out of date: {stale}; run `python scripts/gen_docs.py` and commit the result"


# Metrics -------------------------------------------------------------------------------------------


def _expand(pattern: str) -> set[str]:
    """``reward/x/{mean,max}`` -> {``reward/x/mean``, ``reward/x/max``}."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [[part] if i % 2 == 0 else part.split(",") for i, part in enumerate(parts)]
    return {"".join(combo) for combo in itertools.product(*choices)}


def documented_metrics() -> set[str]:
    text = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    return set().union(*(_expand(span) for span in re.findall(r"`(reward/[^`]+)`", text)))


def test_the_metrics_page_names_every_reward_metric() -> None:
    from perception_verl.integration.advantage import EXCLUDED_GROUPS_METRIC
    from perception_verl.integration.group_sampling import PARTIAL_GROUPS_METRIC
    from perception_verl.integration.metrics import JUDGE_KEY, reward_metrics
    from perception_verl.scorer import EXTRA_KEYS

    n = 6
    extras: dict[str, object] = {key: np.linspace(0.0, 1.0, n) for key in EXTRA_KEYS}
    for key in ("perception_excluded", "judge_failed", "judge_cached", "judge_truncated"):
        if key in extras:
            extras[key] = np.array([0, 1, 0, 1, 0, 0], dtype=float)
    extras["num_annotations"] = np.array([2, 3, 0, 4, 1, 2], dtype=float)
    extras[JUDGE_KEY] = np.array(["lexical"] * n, dtype=object)
    sources = np.array(["geo_a", "geo_a", "geo_a", "geo_b", "geo_b", "geo_b"], dtype=object)
    names = set(reward_metrics(extras, sources)) | {EXCLUDED_GROUPS_METRIC, PARTIAL_GROUPS_METRIC}
    documented = documented_metrics()
    generic = {
        re.sub(r"^reward/perception_judge/.+$", "reward/perception_judge/<judge>", name) for name in names
    }
    generic = {re.sub(r"^reward/geo_[ab]/", "reward/", name) for name in generic}
    assert any(name.startswith("reward/geo_a/") for name in names)
    assert "reward/<data_source>/..." in documented
    missing = sorted(generic - documented)
    assert not missing, f"docs/metrics.md does not name: {missing}"


# The site -------------------------------------------------------------------------------------------


def test_the_nav_and_the_pages_agree() -> None:
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    nav = nav_pages()
    assert len(nav) == len(set(nav))
    assert sorted(nav) == pages, "every docs/*.md belongs in mkdocs.yml's nav, and every nav page must exist"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (the dev extra)")
    proc = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": str(Path(sys.executable).parent), "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()
