"""Running work on an executor someone else owns: a dask.distributed Client (a Slurm cluster
from dask-jobqueue, GPUs from dask-cuda) or any concurrent.futures executor. Calling sends
region shards through these; alignment sends read shards (align_shards.py)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

R = TypeVar("R")


class Executor(Protocol):
    """What runs shards elsewhere: a concurrent.futures executor or a dask.distributed Client
    (anything whose submit(fn, *args) returns a future with result() and cancel())."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


def executor_slots(executor: Executor) -> int:
    """Tasks the executor runs at once: a Dask cluster's worker threads, a pool's workers."""
    nthreads = getattr(executor, "nthreads", None)  # dask.distributed.Client
    if callable(nthreads):
        try:
            return max(1, sum(nthreads().values()))
        except Exception:  # noqa: BLE001 - a client without workers yet
            return 1
    return max(1, int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1))


class Resolved:
    """A result known without running anything (e.g. a shard an earlier run finished): given
    to ordered_submit in place of a task's arguments, it comes back in its place."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value

    def cancel(self) -> bool:
        return False


def ordered_submit(executor: Executor, fn: Callable[..., R], args: Iterable[tuple | Resolved],
                   window: int | None = None, drain: bool = False) -> Iterator[R]:
    """fn(*a) for each a in args on the executor, results in order, at most `window` (default
    twice the executor's slots) submitted and not yet consumed; the rest are cancelled when the
    consumer stops or a task (or args) fails. drain: also wait for those already running to
    end, so that the caller may remove what they write (a task Dask already started runs on
    regardless). A Resolved in args is its own result, in its place."""
    window = window or 2 * executor_slots(executor)
    pending: deque[Any] = deque()
    try:
        for a in args:
            pending.append(a if isinstance(a, Resolved) else executor.submit(fn, *a))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        if drain:
            for f in pending:
                try:
                    f.result()
                except BaseException:  # noqa: BLE001, S110 - the failure that stopped us is raised
                    pass
