"""CheckPool: worker processes that a hard deadline stops, even inside math-verify's C code."""

from __future__ import annotations

import asyncio
import time

import pytest

from perception_verl.workers.pool import CheckCrashed, CheckPool, CheckTimeout
from tests.support.bombs import BOMB_RESPONSE, check_or_die, unguarded_accuracy


def test_results_come_back_and_workers_are_reused() -> None:
    async def go() -> tuple[list[int], dict[str, int]]:
        pool = CheckPool(check_or_die, timeout_s=10.0, workers=2)
        try:
            results = await asyncio.gather(*(pool.run("ok", i) for i in range(20)))
            return list(results), dict(pool.counters)
        finally:
            pool.close()

    results, counters = asyncio.run(go())
    assert results == [i + 1 for i in range(20)]
    assert counters["checks"] == 20 and counters["started"] <= 2
    assert counters["timeouts"] == counters["crashes"] == 0


def test_a_check_stuck_in_c_code_is_killed_at_its_deadline_and_replaced() -> None:
    async def go() -> tuple[float, object, int, dict[str, int]]:
        pool = CheckPool(unguarded_accuracy, timeout_s=2.0, workers=1)
        try:
            began = time.monotonic()
            with pytest.raises(CheckTimeout):
                await pool.run(BOMB_RESPONSE, "7")
            elapsed = time.monotonic() - began
            honest = await pool.run("<answer>\\boxed{7}</answer>", "7")
            return elapsed, honest, len(pool._running), dict(pool.counters)
        finally:
            pool.close()

    elapsed, honest, running, counters = asyncio.run(go())
    assert elapsed < 30, "the bomb ran on instead of being stopped (it takes 70-100 s to finish)"
    assert honest.score == 1.0
    assert running == 0 and counters["timeouts"] == 1 and counters["started"] == 2


def test_a_dead_worker_or_a_raising_check_is_reported_and_the_pool_goes_on() -> None:
    async def go() -> int:
        pool = CheckPool(check_or_die, timeout_s=10.0, workers=1)
        try:
            with pytest.raises(CheckCrashed, match="died"):
                await pool.run("die")
            with pytest.raises(CheckCrashed, match="ValueError"):
                await pool.run("raise")
            return await pool.run("ok", 41)
        finally:
            pool.close()

    assert asyncio.run(go()) == 42


def test_slow_checks_give_up_their_slot_so_quick_ones_are_not_held_back() -> None:
    async def go() -> tuple[list[object], dict[str, int]]:
        pool = CheckPool(unguarded_accuracy, timeout_s=3.0, workers=1, quantum_s=0.5)
        try:
            bombs = [asyncio.ensure_future(pool.run(BOMB_RESPONSE, "7")) for _ in range(3)]
            await asyncio.sleep(0)
            honest = await pool.run("<answer>\\boxed{7}</answer>", "7")
            outcomes = await asyncio.gather(*bombs, return_exceptions=True)
            return [honest, *outcomes], dict(pool.counters)
        finally:
            pool.close()

    (honest, *bombs), counters = asyncio.run(go())
    assert honest.score == 1.0
    assert all(isinstance(b, CheckTimeout) for b in bombs)
    assert counters["demoted"] >= 3


def test_a_closed_pool_refuses_work_and_bad_settings_are_refused() -> None:
    pool = CheckPool(check_or_die, timeout_s=1.0)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(pool.run("ok"))
    with pytest.raises(ValueError, match="timeout_s"):
        CheckPool(check_or_die, timeout_s=0)
