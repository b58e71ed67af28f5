"""Photos worked on by a few threads, each given a time budget: one over it is given up, its thread left behind.

A pathological file (a decoder stuck in a loop, a huge demosaic) must not stall a worker: waiting for it
ends when its budget is spent, counted from the moment a thread took it up, and the pool it holds is
replaced by a fresh one, so the photos queued behind it go on.
"""

import collections
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

#: Threads of a worker process that decode and search photos.
THREADS = min(4, os.cpu_count() or 1)

_pool = None
_pool_lock = threading.Lock()


def shared_pool(stuck=None):
    """The worker process's threads, shared by its DoFn instances (a runner may run several per process).
    ``stuck``: a pool one of whose threads is held by a photo over its budget; it is replaced by a fresh one."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool is stuck:
            if stuck is not None:
                stuck.shutdown(wait=False, cancel_futures=False)
            _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="facetag-detect")
        return _pool


class InFlight:
    """``work(item)`` for items on the shared threads, results taken oldest first within ``budget_s`` each."""

    def __init__(self, work, budget_s):
        self.work = work
        self.budget_s = budget_s
        self.threads = shared_pool()
        self._queue = collections.deque()  # (item, future, {"at": when a thread took it up})

    def __len__(self):
        return len(self._queue)

    def submit(self, item):
        started = {}
        self._queue.append((item, self.threads.submit(self._timed, item, started), started))

    def next(self):
        """``(item, its result, True)`` for the oldest item, or ``(item, None, False)`` when it ran over budget."""
        item, future, started = self._queue.popleft()
        while True:
            begun = started.get("at")  # None while queued behind other items: its time has not started
            wait = self.budget_s if begun is None else max(0.0, begun + self.budget_s - time.monotonic())
            try:
                return item, future.result(timeout=wait), True
            except FutureTimeout:
                if begun is not None:
                    break
        self.threads = shared_pool(stuck=self.threads)
        self._resubmit_queued()
        return item, None, False

    def _resubmit_queued(self):
        """The items still waiting in a pool given up on go to its replacement (cancelled there, never lost)."""
        for n, (item, future, started) in enumerate(self._queue):
            if future.cancel():
                self._queue[n] = (item, self.threads.submit(self._timed, item, started), started)

    def _timed(self, item, started):
        started["at"] = time.monotonic()
        return self.work(item)
