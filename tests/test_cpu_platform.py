"""plugins/verl-cpu-platform: a no-op unless VERL_PLATFORM=cpu; then verl sees a gloo CPU platform."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN_SRC = REPO / "plugins" / "verl-cpu-platform"
sys.path.insert(0, str(PLUGIN_SRC))

from verl_cpu_platform.shims import dedupe_backend  # noqa: E402


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("cpu:gloo,cpu:gloo", "cpu:gloo"),
        ("cpu:gloo,cuda:nccl", "cpu:gloo,cuda:nccl"),
        ("gloo", "gloo"),
        (None, None),
    ],
)
def test_dedupe_backend(given, expected) -> None:
    assert dedupe_backend(given) == expected


def _run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE")}
    environ["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_SRC), str(REPO), environ.get("PYTHONPATH", "")])
    environ.update(env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_activate_is_a_no_op_without_verl_platform_cpu() -> None:
    code = (
        "import os, verl_cpu_platform as p\n"
        "from verl.plugin.platform import PlatformRegistry\n"
        "names = PlatformRegistry.registered_names()\n"
        "print(p.activate(), 'cpu' in names, os.environ.get('VERL_ENGINE_DEVICE'))\n"
    )
    assert _run(code) == "False False None"


def test_under_verl_platform_cpu_verl_sees_a_gloo_cpu_platform() -> None:
    code = (
        "import os, torch, verl_cpu_platform as p\n"
        "assert p.activate()\n"
        "from verl.utils import device as d\n"
        "from torch.distributed.fsdp import CPUOffloadPolicy\n"
        "free, total = d.get_torch_device().mem_get_info()\n"
        "assert 0 < free <= total\n"
        "print(d.get_device_name(), d.get_nccl_backend(), d.get_resource_name(), d.is_support_ipc(),\n"
        "      d.get_device_id(), os.environ['VERL_ENGINE_DEVICE'],\n"
        "      CPUOffloadPolicy(pin_memory=True).pin_memory or torch.cuda.is_available())\n"
    )
    assert _run(code, VERL_PLATFORM="cpu") == "cpu gloo GPU False cpu cuda False"
