"""Work split over forked processes gives exactly what one process gives:
same results, same order, same errors, whatever happens to a child."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from reconciler import forking
from reconciler.config import load_config
from reconciler.errors import ConfigError

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="forking is used on Linux only"),
    # These tests call fork_map directly, in a test process where other tests'
    # sandboxes run threads: qlik-email itself never forks next to a thread
    # (worker_count), and the work forked here takes no lock those threads hold.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

PARENT = os.getpid()


def square_and_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def slow_square_and_pid(n: int) -> tuple[int, int]:
    time.sleep(0.002)
    return square_and_pid(n)


def test_fork_map_keeps_the_order_and_really_uses_children() -> None:
    items = list(range(403))  # about 0.8 s of work: every process gets some
    results = forking.fork_map(slow_square_and_pid, items, 3)
    assert [value for value, _ in results] == [n * n for n in items]
    assert len({pid for _, pid in results}) >= 2  # (all three, unless one was slow to start)


def test_chunks_go_to_whoever_is_free() -> None:
    # This process is busy with `first` for a while: the two children share every
    # chunk (about 0.2 s of work each).
    results = forking.fork_map(
        slow_square_and_pid, list(range(200)), 3, first=lambda: time.sleep(0.6)
    )
    assert [value for value, _ in results] == [n * n for n in range(200)]
    pids = {pid for _, pid in results}
    assert PARENT not in pids and len(pids) == 2


def test_first_runs_once_here_whether_or_not_the_work_is_split() -> None:
    calls: list[int] = []
    forking.fork_map(square_and_pid, list(range(100)), 2, first=lambda: calls.append(os.getpid()))
    forking.fork_map(square_and_pid, list(range(100)), 1, first=lambda: calls.append(os.getpid()))
    assert calls == [PARENT, PARENT]


def test_fork_map_with_one_worker_or_few_items_stays_here() -> None:
    assert {pid for _, pid in forking.fork_map(square_and_pid, range(10), 1)} == {PARENT}
    assert forking.fork_map(square_and_pid, [], 4) == []
    assert forking.fork_map(square_and_pid, [7], 4) == [(49, PARENT)]


def fails_in_children(n: int) -> int:
    if os.getpid() != PARENT:
        raise RuntimeError("a child failed")
    return n + 1


def killed_in_children_after_a_while(n: int) -> int:
    if os.getpid() != PARENT and n >= 300:
        os.kill(os.getpid(), signal.SIGKILL)  # after delivering its first chunks
    return n + 1


def killed_in_children(n: int) -> int:
    if os.getpid() != PARENT:
        os.kill(os.getpid(), signal.SIGKILL)
    return n + 1


def exits_silently_in_children(n: int) -> int:
    if os.getpid() != PARENT:
        os._exit(0)  # "success" without sending anything back
    return n + 1


@pytest.mark.parametrize(
    "work",
    [
        fails_in_children,
        killed_in_children,
        killed_in_children_after_a_while,
        exits_silently_in_children,
    ],
)
def test_a_failed_child_only_costs_time(work: Callable[[int], int]) -> None:
    # `first` keeps this process away until the children have taken (and lost) chunks.
    results = forking.fork_map(work, list(range(500)), 3, first=lambda: time.sleep(0.2))
    assert results == list(range(1, 501))


def raises_on_13(n: int) -> int:
    if n == 13:
        raise ValueError("thirteen")
    return n


def test_an_error_of_the_work_itself_is_raised_here_as_without_forking() -> None:
    with pytest.raises(ValueError, match="thirteen"):
        forking.fork_map(raises_on_13, list(range(400)), 2)  # here, or in a child and again here
    with pytest.raises(ValueError, match="thirteen"):
        forking.fork_map(raises_on_13, list(range(400)), 3, first=lambda: time.sleep(0.2))


def test_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QLIK_EMAIL_WORKERS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert forking.worker_count(199, 200) == 1
    assert forking.worker_count(10_000, 200) == min(cores, forking.MAX_WORKERS)
    monkeypatch.setenv("QLIK_EMAIL_WORKERS", "1")
    assert forking.worker_count(10_000, 200) == 1
    monkeypatch.setenv("QLIK_EMAIL_WORKERS", "3")
    assert forking.worker_count(5, 200) == 3  # asked for: even for a few items
    release = threading.Event()
    helper = threading.Thread(target=release.wait)
    helper.start()
    try:
        assert forking.worker_count(10_000, 200) == 1  # never fork next to another thread
    finally:
        release.set()
        helper.join()


def _fleet(root: Path, count: int, broken: dict[int, str]) -> Path:
    """A repository of `count` tenant files; file i gets the text broken[i] if given."""
    (root / "tenants").mkdir(parents=True)
    (root / "qlik-email.yaml").write_text(
        yaml.safe_dump(
            {
                "defaults": {
                    "auth": {"apiKey": "${env:QLIK_API_KEY}"},
                    "email": {
                        "provider": "BasicAuth",
                        "serverAddress": "smtp.example.com",
                        "serverPort": 587,
                        "securityType": "StartTLS",
                        "password": "${env:SMTP_PASSWORD}",
                    },
                },
                "version": 1,
                "tenants": "tenants/*.yaml",
            }
        )
    )
    for i in range(count):
        name = f"t{i:04d}"
        text = broken.get(i) or yaml.safe_dump(
            {
                "name": name,
                "url": f"https://{name}.eu.qlikcloud.com",
                "email": {"username": name, "emailAddress": f"{name}@example.com"},
            }
        )
        (root / "tenants" / f"{name}.yaml").write_text(text)
    return root


def _load(root: Path, workers: int, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(forking, "worker_count", lambda items, minimum: workers)
    try:
        return load_config(root)
    except ConfigError as exc:
        return exc.issues


def test_a_large_repository_loads_the_same_in_several_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _fleet(tmp_path / "ok", 450, {})
    one = _load(root, 1, monkeypatch)
    three = _load(root, 3, monkeypatch)
    assert one == three
    assert len(one.tenants) == 450  # type: ignore[attr-defined]


def test_every_problem_of_every_process_is_reported_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    duplicate = yaml.safe_dump(
        {"name": "t0001", "url": "https://t0001.eu.qlikcloud.com", "email": {"username": "x"}}
    )
    broken = {
        3: "name: [unclosed\n",  # invalid YAML, in the parent's share
        170: "name: t0170\nurl: ftp://nowhere\nemail: {}\n",  # schema and checks, 2nd share
        299: duplicate,  # a name and URL used by another file of another share
        440: "# nothing here\n",  # an empty file, in the last share
    }
    root = _fleet(tmp_path / "bad", 450, broken)
    one = _load(root, 1, monkeypatch)
    three = _load(root, 3, monkeypatch)
    assert isinstance(one, list) and one == three
    files = {issue.file.rsplit("/", 1)[-1] for issue in one}
    assert files == {"t0003.yaml", "t0170.yaml", "t0299.yaml", "t0440.yaml"}
    assert any("already used by" in issue.message for issue in one)
