"""The SGLang-shaped loopback judge, run in a child process so its CPU work does not slow the client.

A real judge runs on other machines; here the server shares a 2-core box with the client, so it
gets its own process (and its own interpreter lock). :class:`JudgeServer` starts
:class:`tests.support.loopback.LoopbackServer` there with lexical verdicts (any layout of
:mod:`tests.support.layouts`), a fixed latency or a :class:`prefill_model.PrefillLatencyModel`, and a
concurrency cap; the parent talks to it with one JSON line per command over the child's stdin and
stdout (:meth:`JudgeServer.stats`, :meth:`JudgeServer.set_latency`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from benchmarks.prefill_model import JudgeCostParams, PrefillLatencyModel, chat_template
from perception_verl.judge.lexical import lexical_verdicts
from tests.support.fake_sglang import JUDGE_MODEL, format_verdicts
from tests.support.layouts import layout_messages, read_request
from tests.support.loopback import LoopbackServer

_REPO_ROOT = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class ServerSpec:
    """How the judge answers: fixed ``latency_s`` or the prefill ``cost`` model, under ``cap``.

    ``cost_layout`` (with ``cost``): the layout the model prices each request in; ``None`` prices
    the prompt as sent, a layout name prices the same (facts, response) laid out that way.
    """

    latency_s: float = 0.0
    cap: int | None = 64
    cost: JudgeCostParams | None = None
    cost_layout: str | None = None


def answer(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    """Lexical verdicts for the facts and response of a request in any known layout."""
    facts, response = read_request(messages)
    return format_verdicts(lexical_verdicts(facts, response))


def _renderer(layout: str | None) -> Any:
    def render(body: dict[str, Any]) -> str:
        if layout is None:
            return chat_template(body["messages"])
        facts, response = read_request(body["messages"])
        return chat_template(layout_messages(layout, facts, response))

    return render


def _verdict_chars(body: dict[str, Any]) -> int:
    facts, _ = read_request(body["messages"])
    return len(format_verdicts([1] * len(facts)))


def _stats(server: LoopbackServer, model: PrefillLatencyModel | None) -> dict[str, Any]:
    return {
        "chat_requests": server.routes["/v1/chat/completions"],
        "outcomes": dict(server.outcomes),
        "max_in_flight": server.max_in_flight,
        "model": model.stats() if model is not None else None,
    }


def serve(spec: ServerSpec, commands: IO[str], replies: IO[str]) -> None:
    """Run the judge until ``stop`` (or end of input); one JSON reply line per command line."""
    model = None
    if spec.cost is not None:
        model = PrefillLatencyModel(spec.cost, _renderer(spec.cost_layout), _verdict_chars)
    server = LoopbackServer(
        answer, model=JUDGE_MODEL, latency_s=spec.latency_s, latency_fn=model, max_concurrency=spec.cap
    )

    def reply(payload: Any) -> None:
        replies.write(json.dumps(payload) + "\n")
        replies.flush()

    server.start()
    try:
        reply({"url": server.url})
        for line in commands:
            command = json.loads(line)
            if command["op"] == "stats":
                reply(_stats(server, model))
            elif command["op"] == "latency":
                server.latency_s = float(command["seconds"])
                reply({"latency_s": server.latency_s})
            elif command["op"] == "stop":
                break
            else:
                reply({"error": f"unknown command {command!r}"})
    finally:
        server.stop()


class JudgeServer:
    """The loopback judge in a child process; a context manager giving ``url`` while it runs."""

    model = JUDGE_MODEL

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def _call(self, command: dict[str, Any]) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(command) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"loopback judge exited (code {process.poll()}) on {command['op']!r}")
        return json.loads(line)

    def __enter__(self) -> JudgeServer:
        spec = json.dumps(_spec_to_dict(self.spec))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._judge_server", spec],
            cwd=_REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            raise RuntimeError(f"loopback judge failed to start (exit code {code})")
        self.url = json.loads(line)["url"]
        return self

    def stats(self) -> dict[str, Any]:
        return self._call({"op": "stats"})

    def set_latency(self, seconds: float) -> None:
        """Change the fixed per-request latency of the running server."""
        self._call({"op": "latency", "seconds": seconds})

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.write(json.dumps({"op": "stop"}) + "\n")
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._process = None


def _spec_to_dict(spec: ServerSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def _spec_from_dict(raw: dict[str, Any]) -> ServerSpec:
    cost = raw.get("cost")
    return ServerSpec(
        latency_s=float(raw["latency_s"]),
        cap=raw["cap"],
        cost=JudgeCostParams(**cost) if cost is not None else None,
        cost_layout=raw.get("cost_layout"),
    )


if __name__ == "__main__":
    serve(_spec_from_dict(json.loads(sys.argv[1])), sys.stdin, sys.stdout)
