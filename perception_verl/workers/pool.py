"""Run a check in a worker process that a hard deadline really stops, even inside C code.

A thread cannot be stopped while it runs C code holding the interpreter lock (one huge sympy integer
power, for instance), so math-verify runs in a small pool of worker processes instead
(:class:`CheckPool`). A check still running at its deadline has its process killed (``SIGKILL``)
and replaced; the caller gets :class:`CheckTimeout` right at the deadline, whatever the check was
doing. Each worker also arms ``alarm()`` with the default action before every check, so the kernel
ends a worker whose parent died mid-check.

Workers are forked by a fork server of their own (:mod:`perception_verl.workers.forker`, a fresh
single-threaded interpreter), never by the caller: forking a multi-threaded process such as a Ray
worker can copy a held lock and deadlock the child, and :mod:`multiprocessing`'s spawn and forkserver
methods re-run the caller's main module in every worker. The fork server imports the check's module
(math-verify and sympy) once, so a replacement worker starts in milliseconds.

Scheduling: at most ``workers`` checks run at normal priority. A check still running after
``quantum_s`` (honest answers take milliseconds) gives up its slot and continues at a lower CPU
priority (``nice``) until its own deadline, so a batch full of bombs costs about one deadline and
does not hold back the honest answers queued behind them. The deadline of a check counts from its
start in a worker; at most ``max_slow`` checks run past their quantum at once (one more is stopped).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from perception_verl.errors import PerceptionVerlError

logger = logging.getLogger(__name__)

SLOW_NICENESS = 10
"""How much lower the CPU priority of a check past its quantum is (``os.setpriority`` increment)."""

ALARM_GRACE_S = 2
"""Seconds past its deadline after which a worker ends itself (a parent that died cannot kill it)."""


class CheckTimeout(PerceptionVerlError):
    """The check ran past its deadline; its worker process was killed."""


class CheckCrashed(PerceptionVerlError):
    """The worker process died during the check (killed from outside, out of memory, ...)."""


def serve_checks(conn: Connection, fn: Callable[..., Any], alarm_s: int) -> None:
    """Worker loop: run ``fn(*args)`` for each job received, send back ("ok", result) or ("error", name)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):
            return
        signal.alarm(alarm_s)
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except Exception as exc:
            reply = ("error", type(exc).__name__)
        signal.alarm(0)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


@dataclass(eq=False)
class _Worker:
    pid: int
    conn: Connection
    demoted: bool = False

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not self.conn.closed

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.conn.close()


class _Forker:
    """The fork server process and its control socket (one request at a time)."""

    def __init__(self, target: str, alarm_s: int, warmup: tuple[Any, ...] | None) -> None:
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "perception_verl.workers.forker", str(theirs.fileno()), target]
        command.append(str(alarm_s))
        if warmup is not None:
            command.append(base64.b64encode(pickle.dumps(warmup)).decode())
        self.process = subprocess.Popen(command, pass_fds=(theirs.fileno(),))
        theirs.close()
        self.control = ours
        self.lock = threading.Lock()
        if self.control.recv(1) != b"R":
            self.close()
            raise RuntimeError(f"the check fork server for {target} did not start")

    def fork(self) -> _Worker:
        with self.lock:
            self.control.sendall(b"F")
            data, fds, _, _ = socket.recv_fds(self.control, 32, 1)
        if not fds:
            raise RuntimeError("the check fork server sent no worker")
        return _Worker(int(data.decode()), Connection(fds[0]))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.control.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class CheckPool:
    """``fn(*args)`` in worker processes with a hard per-check deadline; use from one event loop.

    ``fn`` must be a module-level function (it is pickled by reference). :meth:`run` returns its
    result, or raises :class:`CheckTimeout` / :class:`CheckCrashed`; an exception raised by ``fn``
    itself comes back as :class:`CheckCrashed` naming its type. ``warmup`` arguments, when given, are
    run once in the fork server, so workers inherit what the first call builds lazily (math-verify's
    LaTeX parser). :meth:`close` kills every worker and the fork server.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        timeout_s: float,
        workers: int = 4,
        quantum_s: float | None = None,
        max_slow: int = 32,
        warmup: tuple[Any, ...] | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"CheckPool timeout_s must be > 0, got {timeout_s!r}")
        if workers < 1 or max_slow < 0:
            raise ValueError(f"CheckPool needs workers >= 1 and max_slow >= 0, got {workers}, {max_slow}")
        self.fn = fn
        self.timeout_s = float(timeout_s)
        self.quantum_s = min(self.timeout_s, quantum_s if quantum_s is not None else min(1.0, timeout_s / 4))
        self.workers = workers
        self.max_slow = max_slow
        self._target = f"{fn.__module__}:{fn.__qualname__}"
        self._warmup = warmup
        self._forker: _Forker | None = None
        self._forker_lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._running: set[_Worker] = set()
        self._slots: asyncio.Semaphore | None = None
        self._slow = 0
        self._closed = False
        self.counters = {"checks": 0, "timeouts": 0, "crashes": 0, "demoted": 0, "started": 0}

    def _spawn(self) -> _Worker:
        with self._forker_lock:
            if self._forker is None:
                alarm_s = math.ceil(self.timeout_s) + ALARM_GRACE_S
                self._forker = _Forker(self._target, alarm_s, self._warmup)
            forker = self._forker
        worker = forker.fork()
        self.counters["started"] += 1
        return worker

    async def _take(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                return worker
            worker.kill()
        return await asyncio.get_running_loop().run_in_executor(None, self._spawn)

    async def start(self, count: int | None = None) -> None:
        """Start ``count`` (default ``workers``) idle workers now, so the first checks do not wait."""
        loop = asyncio.get_running_loop()
        for _ in range(self.workers if count is None else count):
            self._idle.append(await loop.run_in_executor(None, self._spawn))

    async def run(self, *args: Any) -> Any:
        """``fn(*args)`` in a worker: its result, or :class:`CheckTimeout` at ``timeout_s`` from its start."""
        if self._closed:
            raise RuntimeError("CheckPool is closed")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        await self._slots.acquire()
        holding = True
        try:
            worker = await self._take()
            self._running.add(worker)
            try:
                reply = await self._ask(worker, args)
            except BaseException:
                self._running.discard(worker)
                worker.kill()
                raise
            finally:
                if worker.demoted:
                    holding = False
            self._running.discard(worker)
        finally:
            if holding:
                self._slots.release()
        return self._reply(worker, reply)

    async def _ask(self, worker: _Worker, args: tuple[Any, ...]) -> tuple[str, Any] | None:
        loop = asyncio.get_running_loop()
        self.counters["checks"] += 1
        ready: asyncio.Future[None] = loop.create_future()
        fd = worker.conn.fileno()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        started = loop.time()
        try:
            worker.conn.send(args)
            try:
                await asyncio.wait_for(asyncio.shield(ready), self.quantum_s)
            except asyncio.TimeoutError:
                self._demote(worker)
                remaining = self.timeout_s - (loop.time() - started)
                try:
                    await asyncio.wait_for(asyncio.shield(ready), max(remaining, 0.0))
                except asyncio.TimeoutError:
                    self.counters["timeouts"] += 1
                    raise CheckTimeout(f"check ran past {self.timeout_s:g} s") from None
            try:
                return worker.conn.recv()
            except (EOFError, OSError):
                return None
        finally:
            loop.remove_reader(fd)
            if worker.demoted:
                self._slow -= 1

    def _demote(self, worker: _Worker) -> None:
        """Give the slot back and lower the check's CPU priority; stop it when too many are slow."""
        if self._slow >= self.max_slow:
            self.counters["timeouts"] += 1
            raise CheckTimeout(f"more than {self.max_slow} checks past their quantum at once")
        worker.demoted = True
        self._slow += 1
        self.counters["demoted"] += 1
        assert self._slots is not None
        self._slots.release()
        with contextlib.suppress(OSError):
            pid = worker.pid
            os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + SLOW_NICENESS)

    def _reply(self, worker: _Worker, reply: tuple[str, Any] | None) -> Any:
        if reply is None:
            self.counters["crashes"] += 1
            worker.kill()
            raise CheckCrashed("worker process died during the check")
        if worker.demoted or self._closed:
            worker.kill()
        else:
            self._idle.append(worker)
        status, value = reply
        if status != "ok":
            self.counters["crashes"] += 1
            raise CheckCrashed(f"check raised {value}")
        return value

    def close(self) -> None:
        """Kill every worker, idle or running; later :meth:`run` calls raise."""
        self._closed = True
        for worker in [*self._idle, *self._running]:
            worker.kill()
        self._idle.clear()
        self._running.clear()
        with self._forker_lock:
            forker, self._forker = self._forker, None
        if forker is not None:
            forker.close()
