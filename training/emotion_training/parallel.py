"""Per-seed work in worker processes (``--jobs``): the stream replays of `emotion-eval stream`
and `emotion-train stream-fusion`.

Each seed's stream is built, written as a bag and replayed on its own, and the offline replay
is deterministic (the background whole-frame scan runs in line), so a seed gives the same
figures in a worker as in the calling process.  Workers are spawned, not forked: the caller
may already hold onnxruntime sessions and thread pools, which a forked child must not inherit.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar('T')
R = TypeVar('R')


def check_jobs(jobs: int) -> int:
    """``jobs`` if it is a whole number >= 1, else ValueError naming the flag."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f'--jobs {jobs!r}: give a whole number of processes >= 1')
    return jobs


def map_ordered(fn: Callable[[T], R], items: Iterable[T], jobs: int = 1) -> Iterator[R]:
    """``fn(item)`` for each item, yielded in the items' order as each becomes available; with
    ``jobs`` > 1 (and more than one item) in up to ``jobs`` spawned processes, so ``fn`` and the
    items must pickle (a module-level function, or ``functools.partial`` of one).  An exception
    raised by ``fn`` is raised here, with its own type, when its item's turn comes."""
    items = list(items)
    jobs = min(check_jobs(jobs), len(items))
    if jobs <= 1:
        for item in items:
            yield fn(item)
        return
    ctx = multiprocessing.get_context('spawn')
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = [pool.submit(fn, item) for item in items]
        try:
            for fut in futures:
                yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()
