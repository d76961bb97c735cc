"""DeadlineCall: results within the bound, stalled pure-Python calls stopped in their thread."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from perception_verl.rewards.deadline import DeadlineCall, DeadlineExceeded


def spin(seconds: float, state: dict[str, object]) -> str:
    """A pure-Python loop standing in for a parser that will not finish."""
    state["started"] = True
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            pass
        return "finished"
    finally:
        state["left_at"] = time.monotonic()


def test_a_quick_call_returns_its_result() -> None:
    async def go() -> int:
        return await DeadlineCall(sum, [1, 2, 3]).result(5.0)

    assert asyncio.run(go()) == 6


def test_a_stalled_call_is_stopped_in_its_thread() -> None:
    state: dict[str, object] = {}

    async def go() -> float:
        call = DeadlineCall(spin, 30.0, state)
        gave_up = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=r"spin ran past 0\.2 s"):
            await call.result(0.2)
        return gave_up

    started = asyncio.run(go())
    deadline = time.monotonic() + 5.0
    while "left_at" not in state and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "left_at" in state, "the stalled call kept running after its deadline"
    assert float(state["left_at"]) - started < 5.0


def test_a_queued_call_given_up_never_starts() -> None:
    first: dict[str, object] = {}
    second: dict[str, object] = {}
    release = threading.Event()

    def block() -> None:
        release.wait(timeout=10)

    async def go() -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        blocker = DeadlineCall(block)
        queued = DeadlineCall(spin, 0.0, second)
        with pytest.raises(DeadlineExceeded):
            await queued.result(0.1)
        release.set()
        await blocker.result(10.0)
        first["done"] = True

    asyncio.run(go())
    assert first == {"done": True} and "started" not in second
