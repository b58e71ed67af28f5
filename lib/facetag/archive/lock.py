"""One run at a time on a store: the write lock.

A local store is locked with ``flock`` on ``STORE/.lock`` for the whole run: the lock dies with its
process, so a killed run never blocks the next one. The file also says who holds it, for the message
another run prints.

An object store (``s3://``, ``gs://``) has no ``flock``: a remote store is locked by a lease, the
object ``STORE/_lease.json`` ``{owner, run_id, started, expires}``, written only by compare-and-swap
(facetag.io.objects). A run takes it with a create-only put (or, once the holder's lease has expired,
a conditional replace), a thread renews it every third of its time, and the run releases it at the
end. A killed run stops renewing, so its lease expires and the store is free again after
:data:`LEASE_SECONDS` (plus a margin for clocks that disagree). Before each commit the run renews it
once more (:meth:`StoreLock.check`): a run that lost its lease (stalled past its expiry while another
took the store) stops without committing.
"""

import datetime
import json
import os
import socket
import threading

from facetag.errors import FaceTagError
from facetag.io.files import is_remote
from facetag.io.objects import Cell, Conflict

LOCK_FILE = ".lock"
LEASE_FILE = "_lease.json"
#: How long a remote store's lease lasts without renewal: a killed run blocks the store this long at most.
LEASE_SECONDS = float(os.environ.get("FACETAG_LEASE_SECONDS", 60))
#: Another run takes an expired lease only this long after its expiry, for machines whose clocks disagree.
CLOCK_MARGIN_SECONDS = 2.0


class StoreBusyError(FaceTagError):
    """Another run is writing the store."""


class LeaseLostError(FaceTagError):
    """This run's lease on a remote store expired and another run took the store: nothing was committed."""


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(t):
    return t.isoformat(timespec="milliseconds")


class StoreLock:
    """The write lock of the store at ``path``, as a context manager; entering raises StoreBusyError when
    another run holds it. ``check()`` raises LeaseLostError if a remote store's lease was lost."""

    def __init__(self, path):
        self.path = path
        self._handle = None
        self._lease = None

    def __enter__(self):
        if is_remote(self.path):
            self._lease = _Lease(self.path.rstrip("/") + "/" + LEASE_FILE, self.path)
            self._lease.acquire()
            return self
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

    def check(self):
        """Before a commit: raise LeaseLostError unless this run still holds the store (a local flock
        cannot be lost)."""
        if self._lease:
            self._lease.renew()

    def __exit__(self, *exc):
        if self._handle:
            self._handle.close()  # releases the flock
            self._handle = None
        if self._lease:
            self._lease.release()
            self._lease = None


class _Lease:
    """A run's expiring claim on a remote store (see the module docstring)."""

    def __init__(self, url, store, ttl=None):
        self.cell = Cell(url)
        self.store = store
        self.ttl = LEASE_SECONDS if ttl is None else ttl
        self.owner = f"{socket.gethostname()} pid {os.getpid()}"
        self.run = f"{self.owner}, {_now().strftime('%H%M%S')}-{os.urandom(3).hex()}"
        self.version = None
        self.started = None
        self.lost = False
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread = None

    def _record(self, released=False):
        now = _now()
        return json.dumps({"owner": self.owner, "run": self.run, "started": _iso(self.started),
                           "renewed": _iso(now), "expires": _iso(now + datetime.timedelta(seconds=self.ttl)),
                           "released": released}).encode()

    def acquire(self):
        while True:
            data, version = self.cell.read()
            holder = json.loads(data) if data else None
            self.started = _now()
            try:
                if holder is None:
                    self.version = self.cell.create(self._record())
                elif holder["released"] or _now() > (datetime.datetime.fromisoformat(holder["expires"])
                                                     + datetime.timedelta(seconds=CLOCK_MARGIN_SECONDS)):
                    self.version = self.cell.replace(self._record(), version)
                else:
                    raise StoreBusyError(
                        f"another facetag run is writing the store {self.store} ({holder['owner']}, since "
                        f"{holder['started']}); its lease expires at {holder['expires']} unless that run renews "
                        "it: wait for it to finish, then run again (a run that was killed blocks the store "
                        f"until its lease expires, {self.ttl:.0f} s at most)")
            except Conflict:
                continue  # another run moved first: look again
            break
        self._thread = threading.Thread(target=self._renew_every, daemon=True, name="facetag-lease")
        self._thread.start()

    def renew(self):
        with self._mutex:
            if not self.lost:
                try:
                    self.version = self.cell.replace(self._record(), self.version)
                except Conflict:
                    self.lost = True
            if self.lost:
                raise LeaseLostError(
                    f"this run lost its lease on the store {self.store}: it stalled past the lease's "
                    f"{self.ttl:.0f} s and another run took the store, so this run committed nothing; "
                    "run it again once the other run has finished")

    def _renew_every(self):
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except LeaseLostError:
                return
            except Exception:  # noqa: BLE001 - a passing network error: the next period tries again
                continue

    def release(self):
        self._stop.set()
        self._thread.join()
        with self._mutex:
            if not self.lost:
                try:
                    self.cell.replace(self._record(released=True), self.version)
                except Exception:  # noqa: BLE001 - taken over after it expired, or unreachable: it expires by itself
                    pass
