"""The documented SGLang launcher passes what the judge needs from SGLang, as the tested server does.

``recipes/launch_sglang_judge.sh`` must pass ``--enable-cache-report`` (else SGLang reports
``prompt_tokens_details`` as null and the judge has no cached-token count) and ``--enable-metrics``
(SGLang's counters at ``/metrics``). The real-engine tests run SGLang with the same two flags
(``tests.support.sglang_server.SGLangServer``), so what they show holds for a judge started the
documented way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.sglang_server import SGLangServer

REPO = Path(__file__).resolve().parents[2]
NEEDED = ("--enable-cache-report", "--enable-metrics")


def launcher_argv() -> list[str]:
    env = {**os.environ, "PYTHON": sys.executable, "DRY_RUN": "1"}
    printed = subprocess.run(
        ["bash", str(REPO / "recipes" / "launch_sglang_judge.sh")],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    words = subprocess.run(
        ["bash", "-c", 'eval "set -- $(cat)"; printf "%s\\0" "$@"'],
        input=printed, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return words.split("\0")[:-1]


def test_the_launcher_reports_cached_tokens_and_exposes_metrics() -> None:
    argv = launcher_argv()
    assert argv[1:3] == ["-m", "sglang.launch_server"]
    for flag in NEEDED:
        assert flag in argv, f"recipes/launch_sglang_judge.sh does not pass {flag}"


def test_the_tested_server_runs_with_the_launchers_flags() -> None:
    command = SGLangServer(Path("python"), Path("model"), "judge", Path("log")).command()
    for flag in NEEDED:
        assert flag in command
