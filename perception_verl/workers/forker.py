"""A clean fork server for check workers: ``python -m perception_verl.workers.forker FD FN ALARM [ARGS]``.

Started by :class:`perception_verl.workers.pool.CheckPool` as a fresh, single-threaded
interpreter (never a fork of the caller, which may be a multi-threaded Ray worker, and without
re-running the caller's main module as :mod:`multiprocessing`'s spawn and forkserver methods do). It
imports the check function's module once (math-verify and sympy) and, given ``ARGS`` (a base64
pickle of a tuple), runs the function on them once so that lazily built parser state is inherited
too; then it forks one worker per byte
received on its control socket and sends back the worker's pid and its end of a fresh socket pair
(``SCM_RIGHTS``). Workers are reaped automatically; the server exits when the pool closes the control
socket.
"""

from __future__ import annotations

import base64
import importlib
import logging
import os
import pickle
import signal
import socket
import sys
from multiprocessing.connection import Connection


def resolve(target: str) -> object:
    """The function named ``module:qualname``."""
    module_name, _, qualname = target.partition(":")
    value: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def serve(control: socket.socket, target: str, alarm_s: int, warmup: tuple[object, ...] | None) -> None:
    """Fork a worker running :func:`~perception_verl.workers.pool.serve_checks` per request byte."""
    from perception_verl.workers.pool import serve_checks

    fn = resolve(target)
    if warmup is not None:
        fn(*warmup)  # type: ignore[operator]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control.sendall(b"R")
    while control.recv(1):
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            theirs.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            serve_checks(Connection(mine.detach()), fn, alarm_s)  # type: ignore[arg-type]
            os._exit(0)
        mine.close()
        socket.send_fds(control, [str(pid).encode()], [theirs.fileno()])
        theirs.close()


def main(argv: list[str]) -> None:
    # The checks disable math-verify's signal timeouts on purpose (accuracy_reward bounds its input
    # instead), so math-verify's one-time "timeout is disabled" warning is noise on this stderr.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    fd, target, alarm_s = int(argv[0]), argv[1], int(argv[2])
    warmup = pickle.loads(base64.b64decode(argv[3])) if len(argv) > 3 else None
    serve(socket.socket(fileno=fd), target, alarm_s, warmup)


if __name__ == "__main__":
    main(sys.argv[1:])
