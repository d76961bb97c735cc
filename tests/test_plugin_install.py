"""``pip install`` alone makes ``reward.reward_manager.source=register name=perception`` work.

The package is installed (a built wheel, not editable) into a fresh virtual environment whose only
other packages are the shared environment's, reached through a ``.pth`` line, so the
``verl.plugins`` entry point under test is the one this checkout's ``pyproject.toml`` declares. A
subprocess on that interpreter then runs verl's ``RewardLoopManager`` on Ray with the registered
name: no ``module.path``, no worker setup hook, no import of ours before verl's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.ray

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import verl  # loads the verl.plugins entry points, as every verl process does
    import ray
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

    import perception_verl  # the installed copy; imported before the checkout goes on the path
    import perception_verl.integration.manager

    sys.path.insert(0, sys.argv[1])  # the checkout: for tests.support only
    from transformers import AutoTokenizer
    from tests.support.tiny_model import build_tiny_tokenizer
    from tests.support.verl_harness import (
        Sample, build_dataproto, compose_trainer_config, last_token_scores, score_with_reward_loop,
    )
    from perception_verl.plugin import plugin_status

    tok_dir = build_tiny_tokenizer(__import__("pathlib").Path(sys.argv[2]))
    overrides = [
        "reward.reward_manager.source=register",
        "reward.reward_manager.name=perception",
        "reward.num_workers=1",
        f"actor_rollout_ref.model.path={tok_dir}",
        "+reward.reward_kwargs.judge=lexical",
    ]
    samples = [
        Sample("Find f.", "<think>JKLM is a parallelogram.</think><answer>\\\\boxed{7}</answer>", "7",
               ["JKLM is a parallelogram"]),
        Sample("Find f.", "<think>No idea.</think><answer>\\\\boxed{5}</answer>", "7", ["JK = 3f - 6"]),
    ]

    @ray.remote
    def worker_view():
        import verl  # noqa: F401
        import perception_verl
        from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
        return perception_verl.__file__, REWARD_MANAGER["perception"].__module__

    env_vars = {"TOKENIZERS_PARALLELISM": "false"}
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": env_vars})
    try:
        data = build_dataproto(AutoTokenizer.from_pretrained(str(tok_dir)), samples)
        out = score_with_reward_loop(compose_trainer_config(overrides), data)
        print(json.dumps({
            "driver_file": perception_verl.__file__,
            "driver_registered": REWARD_MANAGER["perception"].__module__,
            "status_entry_point": plugin_status().entry_point,
            "worker": ray.get(worker_view.remote()),
            "scores": last_token_scores(data, out.batch["rm_scores"]),
            "accuracy": out.non_tensor_batch["accuracy"].tolist(),
        }))
    finally:
        ray.shutdown()
    """
)


def _fresh_venv(root: Path) -> Path:
    """A venv without pip whose site-packages sees the shared environment's through a .pth line."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    Path(site, "shared_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _source_copy(target: Path) -> Path:
    """The files a wheel is built from, copied so the build leaves nothing in the checkout."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, target / name)
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "perception_verl", target / "perception_verl", ignore=skip)
    # The demo package (tiny tokenizer for tests.support) goes in beside it, as scripts/setup.sh does.
    shutil.copytree(REPO / "demo", target / "demo", ignore=skip)
    return target


def test_pip_install_registers_the_manager_for_verls_reward_loop(tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path / "venv")
    source = _source_copy(tmp_path / "src")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VERL_USE_EXTERNAL_PLUGINS")}
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    install = subprocess.run(
        [*pip, str(source), str(source / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    installed = tmp_path / "venv" / "lib"
    points = list(installed.glob("python*/site-packages/perception_verl-*.dist-info/entry_points.txt"))
    assert len(points) == 1, "no wheel metadata in the fresh venv"
    assert "[verl.plugins]\nperception = perception_verl.plugin" in points[0].read_text()

    done = subprocess.run(
        [str(python), "-c", SCRIPT, str(REPO), str(tmp_path / "tok")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    venv = str(tmp_path / "venv")
    assert report["driver_file"].startswith(venv)  # the installed copy, not the checkout
    assert report["driver_registered"] == "perception_verl.integration.manager"
    assert report["status_entry_point"] == "perception_verl.plugin"
    worker_file, worker_registered = report["worker"]
    assert worker_file.startswith(venv) and worker_registered == "perception_verl.integration.manager"
    assert report["accuracy"] == [1.0, 0.0]
    assert report["scores"][0] > report["scores"][1]
