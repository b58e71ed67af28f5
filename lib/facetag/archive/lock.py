"""One run at a time on a store: the write lock.

A local store is locked with ``flock`` on ``STORE/.lock`` for the whole run: the lock dies with its
process, so a killed run never blocks the next one. The file also says who holds it, for the message
another run prints.
"""

import datetime
import os

from facetag.errors import FaceTagError
from facetag.io.files import is_remote

LOCK_FILE = ".lock"


class StoreBusyError(FaceTagError):
    """Another run is writing the store."""


class StoreLock:
    """The write lock of the store at ``path``, as a context manager; entering raises StoreBusyError when
    another run holds it."""

    def __init__(self, path):
        self.path = path
        self._handle = None

    def __enter__(self):
        if is_remote(self.path):
            return self  # remote stores: runs must be serialised by the scheduler (README)
        import fcntl

        os.makedirs(self.path, exist_ok=True)
        self._handle = open(os.path.join(self.path, LOCK_FILE), "a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "another process"
            self._handle.close()
            self._handle = None
            raise StoreBusyError(f"another facetag run is writing the store {self.path} ({holder}); "
                                 "wait for it to finish, then run again") from None
        self._handle.seek(0)
        self._handle.truncate()
        started = datetime.datetime.now().isoformat(timespec="seconds")
        self._handle.write(f"pid {os.getpid()}, started {started}")
        self._handle.flush()
        return self

    def __exit__(self, *exc):
        if self._handle:
            self._handle.close()  # releases the flock
            self._handle = None
