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
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4
# Chunks per process in `fork_map`: small enough to even out the processes'
# loads, few enough that taking one costs nothing (at most 4 x 64 x 4 bytes
# of chunk numbers, well within a pipe's buffer).
CHUNKS_PER_WORKER = 64


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


def fork_map(
    work: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    *,
    first: Callable[[], object] | None = None,
) -> list[R]:
    """`[work(item) for item in items]`, computed by this process and
    `workers - 1` forked children together.

    The items are cut into small chunks whose numbers wait in a pipe; every
    process takes the next number until none is left, so a process that is
    slowed down (or busy with `first`, which this process runs before taking
    any chunk: work for the next stage that can overlap this one) simply takes
    fewer. A child sends each chunk's results back, pickled, as soon as it has
    them, and this process takes them in between its own chunks, so little is
    left to receive at the end. The order of the results is kept.

    A child that fails in any way (an exception, a crash, a signal) only costs
    time: the chunks it took and did not deliver are then computed here, so
    the result is always the same as without forking. `work` must not have side
    effects the parent relies on.
    """
    count = max(1, min(workers, len(items)))
    if count == 1:
        if first is not None:
            first()
        return [work(item) for item in items]
    size = max(1, -(-len(items) // (count * CHUNKS_PER_WORKER)))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    tasks = _task_pipe(len(chunks))
    flush_std_streams()
    children: list[_Child] = []
    try:
        for _ in range(count - 1):
            children.append(_spawn(work, chunks, tasks))
        if first is not None:
            first()
        done: dict[int, list[R]] = {}
        while len(number := os.read(tasks, 4)) == 4:
            index = int.from_bytes(number, "big")
            done[index] = [work(item) for item in chunks[index]]
            for child in children:
                child.receive(done, wait=False)
        for child in children:
            child.receive(done, wait=True)
        children.clear()
        return [
            result
            for index, chunk in enumerate(chunks)
            for result in done.get(index) or [work(item) for item in chunk]
        ]
    finally:
        os.close(tasks)
        for child in children:  # only when interrupted: stop and reap the rest
            child.abandon()


def _task_pipe(count: int) -> int:
    """A pipe holding the numbers 0..count-1 (4 bytes each), closed for writing:
    a read of 4 bytes takes one number, atomically, and b"" means none is left."""
    read_end, write_end = os.pipe()
    try:
        # Written whole before any reader exists, so it must fit the pipe's buffer.
        os.write(write_end, b"".join(i.to_bytes(4, "big") for i in range(count)))
    finally:
        os.close(write_end)
    return read_end


def fork_child(body: Callable[[int], object]) -> tuple[int, int]:
    """Fork a child that runs `body(fd)`, `fd` being the write end of a pipe, then
    leaves at once (exit status 0, or 1 if `body` raised anything), without the
    cleanup of the parent's state it inherited. Returns (pid, read end)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            body(write_end)
            code = 0
        except BaseException:  # the parent deals with what was not delivered
            pass
        finally:
            with contextlib.suppress(Exception):
                flush_std_streams()
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def _spawn(work: Callable[[T], R], chunks: Sequence[Sequence[T]], tasks: int) -> _Child:
    def compute_and_send(fd: int) -> None:  # chunk by chunk, as long as any is left
        with os.fdopen(fd, "wb", buffering=0) as pipe:
            while len(number := os.read(tasks, 4)) == 4:
                index = int.from_bytes(number, "big")
                results = [work(item) for item in chunks[index]]
                frame = pickle.dumps((index, results), pickle.HIGHEST_PROTOCOL)
                pipe.write(len(frame).to_bytes(4, "big") + frame)

    pid, read_end = fork_child(compute_and_send)
    os.set_blocking(read_end, False)
    return _Child(pid, read_end)


class _Child:
    """The receiving end of one child: frames of (chunk number, results)."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self._buffer = bytearray()
        self._reaped = False

    def receive(self, done: dict[int, list[Any]], *, wait: bool) -> None:
        """Add every complete frame received so far to `done`; with `wait`, read
        until the child has finished (then reap it and close the pipe)."""
        if wait:
            os.set_blocking(self.fd, True)
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            self._buffer += data
        if wait:
            os.close(self.fd)
            os.waitpid(self.pid, 0)
            self._reaped = True
        self._unpack(done)

    def _unpack(self, done: dict[int, list[Any]]) -> None:
        buffer, offset = self._buffer, 0
        while len(buffer) - offset >= 4:
            end = offset + 4 + int.from_bytes(buffer[offset : offset + 4], "big")
            if end > len(buffer):
                break  # the rest of this frame is still on its way (or was lost)
            index, results = pickle.loads(buffer[offset + 4 : end])  # our own child's
            done[index] = results
            offset = end
        del buffer[:offset]

    def abandon(self) -> None:
        if self._reaped:  # its pid may belong to another process by now
            return
        with contextlib.suppress(OSError):
            os.close(self.fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
