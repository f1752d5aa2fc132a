"""Using every core for CPU-bound work: when to fork, and a forked `map`.

One Python process uses one core. Validating a thousand tenant files and
reading a large fleet are both bound by the client's CPU, so both split their
work over a few processes forked from this one: a child inherits everything
already loaded and parses nothing again.

Forking is used only where it is safe and pays: on Linux, in a process with no
other thread (a fork copies locks other threads may hold), with at least two
usable cores and enough items per process. Anywhere else the work runs in this
process. The environment variable QLIK_EMAIL_WORKERS sets the number of
processes (1 turns forking off).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4


def worker_count(items: int, min_per_worker: int) -> int:
    """How many processes should share `items` items of work (1: do not fork)."""
    if sys.platform != "linux" or not hasattr(os, "fork"):
        return 1
    if threading.active_count() > 1:
        return 1
    wanted = os.environ.get("QLIK_EMAIL_WORKERS", "").strip()
    if wanted.isdigit() and int(wanted) > 0:
        return min(int(wanted), MAX_WORKERS)
    cores = len(os.sched_getaffinity(0))
    return max(1, min(cores, MAX_WORKERS, items // max(1, min_per_worker)))


def flush_std_streams() -> None:
    """Flush stdout and stderr: a child must not write out what the parent had buffered."""
    sys.stdout.flush()
    sys.stderr.flush()


def fork_map(work: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """`[work(item) for item in items]`, with the items split into `workers`
    contiguous chunks; forked children compute all chunks but the first, which
    this process computes meanwhile. Results come back pickled through a pipe.

    A child that fails in any way (an exception, a crash, a signal) only costs
    time: its chunk is then computed here, so the result is always the same as
    without forking. `work` must not have side effects the parent relies on.
    """
    count = max(1, min(workers, len(items)))
    if count == 1:
        return [work(item) for item in items]
    size = -(-len(items) // count)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    flush_std_streams()
    children: list[tuple[int, int]] = []
    try:
        for chunk in chunks[1:]:
            children.append(_spawn(work, chunk))
        results = [work(item) for item in chunks[0]]
        for (pid, fd), chunk in zip(children, chunks[1:], strict=True):
            part: list[R] | None = _collect(pid, fd, len(chunk))
            results.extend(part if part is not None else [work(item) for item in chunk])
        children.clear()
        return results
    finally:
        for pid, fd in children:  # only when interrupted: stop and reap the rest
            _abandon(pid, fd)


def _spawn(work: Callable[[T], R], chunk: Sequence[T]) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, and leave without any cleanup
        code = 1
        try:
            os.close(read_end)
            payload = pickle.dumps([work(item) for item in chunk], pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            code = 0
        except BaseException:  # the parent computes the chunk instead
            pass
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def _collect(pid: int, fd: int, expected: int) -> list[R] | None:
    """The child's results, or None when it did not deliver all of them."""
    with os.fdopen(fd, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return None
    try:
        part = pickle.loads(payload)  # our own child's, through our own pipe
    except Exception:  # a truncated payload: compute the chunk here
        return None
    return part if isinstance(part, list) and len(part) == expected else None


def _abandon(pid: int, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
