"""Start and stop one real SGLang server (0.5.23 on CPU, in ``.venv-sglang``).

:class:`SGLangServer` launches ``python -m sglang.launch_server`` from the SGLang interpreter with
SGLang's CPU engine (``SGLANG_USE_CPU_ENGINE=1``, ``--device cpu``; its ``sgl_kernel`` CPU operators
come from ``plugins/sglang-cpu-kernels``), torch-native attention, no overlap scheduler, a small KV pool,
no warm-up request, the cached-token report (``usage.prompt_tokens_details.cached_tokens``) and its
Prometheus metrics, in its own process group on a free loopback port. It has the interface of
:class:`tests.support.vllm_server.VLLMServer` (``url``, ``process``, ``start``, ``wait_ready``, ``stop``,
``log_tail``), so the real-engine tests run against either.

:func:`prefix_cache_counters` reads SGLang's own ``sglang:prompt_tokens_total`` and
``sglang:cached_tokens_total`` counters (tokens) from ``/metrics``, in the shape the vLLM module gives
(``queries`` / ``hits``); :func:`flush_cache` empties its radix cache (SGLang has no per-request cache
salt, so a measured batch starts from an empty cache instead).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.vllm_server import _group_alive, free_port, http_get

SGLANG_ENV = {
    "SGLANG_USE_CPU_ENGINE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
# SGLang starts a scheduler and a detokenizer process that each import all of it: 45-60 s on 2 quiet
# cores, 4-5 minutes seen at load average 18.
START_TIMEOUT_S = 480.0

_COUNTER = re.compile(r"^sglang:(prompt_tokens|cached_tokens)_total(?:\{[^}]*\})?\s+([0-9.eE+-]+)$")


def parse_prefix_cache_counters(text: str) -> dict[str, float]:
    """``{"queries": prompt tokens, "hits": cached prompt tokens}`` summed over labels, from Prometheus text.

    ``sglang:cached_tokens_total`` is split by ``cache_source`` (device, host, storage); all count.
    """
    out = {"queries": 0.0, "hits": 0.0}
    for line in text.splitlines():
        match = _COUNTER.match(line.strip())
        if match:
            out["queries" if match.group(1) == "prompt_tokens" else "hits"] += float(match.group(2))
    return out


def prefix_cache_counters(url: str) -> dict[str, float]:
    """SGLang's prompt-token and cached-token counters at ``url`` (needs ``--enable-metrics``)."""
    status, body = http_get(f"{url}/metrics")
    if status != 200:
        raise RuntimeError(f"GET {url}/metrics answered {status} (is SGLang running with --enable-metrics?)")
    return parse_prefix_cache_counters(body)


def flush_cache(url: str, timeout_s: float = 30.0) -> None:
    """Empty SGLang's radix cache (``POST /flush_cache``); it refuses while requests run: retried."""
    deadline = time.monotonic() + timeout_s
    while True:
        request = urllib.request.Request(f"{url}/flush_cache", method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=10.0) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"POST {url}/flush_cache did not succeed within {timeout_s:g} s")
        time.sleep(0.5)


@dataclass
class SGLangServer:
    """One SGLang server process serving ``model_dir`` as ``served_name`` on 127.0.0.1, on CPU."""

    python: Path
    model_dir: Path
    served_name: str
    log_path: Path
    # KV pool in tokens (about 2 kB each for the tiny model). It is also the radix cache's room: at 8192
    # only ~6 judge prompts fit, so concurrent requests queue and cached prefixes are evicted.
    max_total_tokens: int = 65536
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    kind = "sglang"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.python), "-m", "sglang.launch_server",
            "--model-path", str(self.model_dir),
            "--served-model-name", self.served_name,
            "--device", "cpu",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--disable-overlap-schedule",
            "--attention-backend", "torch_native",
            "--max-total-tokens", str(self.max_total_tokens),
            "--mem-fraction-static", "0.05",
            "--skip-server-warmup",
            "--enable-cache-report",
            "--enable-metrics",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> None:
        """Launch the server (returns at once; see :meth:`wait_ready`)."""
        env = {**os.environ, **SGLANG_ENV}
        env.pop("PYTHONPATH", None)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll ``/health`` (SGLang: a one-token generation) until 200; RuntimeError on exit or timeout."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"SGLang exited with status {self.process.returncode} while starting:\n{self.log_tail()}"
                )
            if http_get(f"{self.url}/health", timeout_s=25.0)[0] == 200:
                return
            time.sleep(1.0)
        raise RuntimeError(f"SGLang did not answer /health within {timeout_s:g} s:\n{self.log_tail()}")

    def stop(self, grace_s: float = 20.0) -> None:
        """End the server's process group (HTTP server, scheduler, detokenizer): SIGTERM, then SIGKILL."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
        deadline = time.monotonic() + grace_s
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)

    def __enter__(self) -> SGLangServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_tiny_sglang_judge(python: Path, folder: Path, served_name: str) -> SGLangServer:
    """Build the tiny random-weight chat model in ``folder`` and launch SGLang on it (not waited for)."""
    from tests.support.tiny_chat_model import build_tiny_chat_model

    model_dir = build_tiny_chat_model(folder / "model")
    server = SGLangServer(python, model_dir, served_name, folder / "sglang.log")
    server.start()
    return server
