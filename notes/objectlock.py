"""Prototype (issue 22): compare-and-swap objects and an expiring run lease, on object storage or a local folder.

Two pieces, one interface for ``s3://`` (``gs://``, ``az://``) and local paths:

* :class:`Cell`: one small object (``store.json``, the lease) read with its version and written only
  if nobody wrote it meanwhile. On object stores through ``obstore`` (Rust ``object_store``, the
  library delta-rs uses): ``put(mode="create")`` is a PUT with ``If-None-Match: *``, ``put(mode={"e_tag":
  ..., "version": ...})`` a PUT with ``If-Match`` (S3) or an ``ifGenerationMatch`` (GCS). On a local
  folder, ``flock`` on a side file around read, compare and an atomic rename (``object_store``'s
  LocalFileSystem does not implement the update mode).
* :class:`Lease`: a run's claim on a store, an object ``{owner, run_id, started, expires}`` taken by a
  create-only put, renewed by a conditional put, released by a conditional put of a released record,
  and taken over by a conditional put only once it has expired (so a killed run blocks the store for
  one lease time at most). A holder that finds its lease taken stops (:class:`LeaseLost`).

Run ``python notes/objectlock_test.py`` for the proof with concurrent processes.
"""

import datetime
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
import uuid


class Conflict(Exception):
    """The object changed (or appeared) since it was read: the compare-and-swap did not happen."""


class StoreBusy(Exception):
    """Another live run holds the lease."""

    def __init__(self, holder):
        self.holder = holder
        super().__init__(
            f"another facetag run holds the store since {holder['started']} ({holder['owner']}, run "
            f"{holder['run_id']}); its lease expires at {holder['expires']} unless that run renews it: "
            "wait for it to finish, then run again")


class LeaseLost(Exception):
    """This run's lease expired and another run took the store: this run must stop without committing."""


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(t):
    return t.isoformat(timespec="milliseconds")


class Cell:
    """A small object at ``url`` (``s3://bucket/key``, ``gs://...``, or a local path) with versioned writes.

    ``read()`` gives ``(data or None, version)``; ``create(data)`` and ``replace(data, version)`` raise
    :class:`Conflict` when the object exists / changed since ``version`` was read.
    """

    def __new__(cls, url):
        if cls is Cell:
            cls = ObjectCell if "://" in url and not url.startswith("file://") else LocalCell
        return super().__new__(cls)


class ObjectCell(Cell):
    def __init__(self, url):
        import obstore
        from obstore.store import from_url

        self.url = url
        parent, self.key = url.rsplit("/", 1)
        # Credentials, region, endpoint from the standard AWS_* / GOOGLE_* variables; conditional put
        # ("etag", If-Match / If-None-Match) is object_store's default for S3.
        self.store = from_url(parent + "/")
        self.obstore = obstore

    def read(self):
        from obstore.exceptions import NotFoundError

        try:
            got = self.obstore.get(self.store, self.key)
        except (NotFoundError, FileNotFoundError):
            return None, None
        meta = got.meta
        return bytes(got.bytes()), _version(meta)

    def create(self, data):
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            r = self.obstore.put(self.store, self.key, data, mode="create")
        except (AlreadyExistsError, PreconditionError, FileExistsError) as e:
            raise Conflict(f"{self.url} exists") from e
        return _version(r)

    def replace(self, data, version):
        from obstore.exceptions import NotFoundError, PreconditionError

        try:
            r = self.obstore.put(self.store, self.key, data, mode=version)
        except (PreconditionError, NotFoundError, FileNotFoundError) as e:
            raise Conflict(f"{self.url} changed since it was read") from e
        return _version(r)


def _version(meta):
    """obstore's UpdateVersion: the ETag (S3: If-Match) and/or the version (GCS generation), None left out."""
    return {k: meta[k] for k in ("e_tag", "version") if meta.get(k) is not None}


class LocalCell(Cell):
    """A local file: ``flock`` on ``<file>.cas`` makes read-compare-rename one step; readers need no lock."""

    def __init__(self, url):
        self.url = url.removeprefix("file://")
        os.makedirs(os.path.dirname(os.path.abspath(self.url)), exist_ok=True)

    @staticmethod
    def _version(data):
        return None if data is None else {"e_tag": hashlib.sha256(data).hexdigest(), "version": None}

    def _current(self):
        try:
            with open(self.url, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def read(self):
        data = self._current()
        return data, self._version(data)

    def _swap(self, data, expect):
        with open(self.url + ".cas", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            current = self._current()
            if self._version(current) != expect:
                raise Conflict(f"{self.url} {'exists' if expect is None else 'changed since it was read'}")
            tmp = f"{self.url}.tmp-{os.getpid()}-{threading.get_ident()}"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.url)
        return self._version(bytes(data))

    def create(self, data):
        return self._swap(data, None)

    def replace(self, data, version):
        return self._swap(data, version)


class Lease:
    """An expiring claim on a store (``<store>/_lease.json``); see the module docstring.

    ``ttl``: seconds a lease lasts without renewal; ``renew_every``: the holder's renewal period (a
    background thread; default ttl/3); ``skew``: seconds another run waits past ``expires`` before
    taking over, for clocks that disagree.
    """

    def __init__(self, url, run_id=None, ttl=60.0, renew_every=None, skew=5.0):
        self.cell = Cell(url)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.owner = f"{socket.gethostname()} pid {os.getpid()}"
        self.ttl, self.skew = ttl, skew
        self.renew_every = renew_every if renew_every is not None else ttl / 3
        self.version = None
        self.started = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._mutex = threading.Lock()

    def _record(self, released=False):
        now = _now()
        return json.dumps({"owner": self.owner, "run_id": self.run_id, "started": _iso(self.started),
                           "renewed": _iso(now), "expires": _iso(now + datetime.timedelta(seconds=self.ttl)),
                           "released": released}).encode()

    def acquire(self, wait=0.0, poll=0.5):
        """Take the lease; wait up to ``wait`` seconds for a live holder, then raise :class:`StoreBusy`.

        Returns the record of the expired holder taken over (None if the lease was free or released).
        """
        deadline = time.monotonic() + wait
        while True:
            data, version = self.cell.read()
            holder = json.loads(data) if data else None
            self.started = _now()
            try:
                if holder is None:
                    self.version = self.cell.create(self._record())
                elif holder["released"] or _now() > datetime.datetime.fromisoformat(holder["expires"]) + \
                        datetime.timedelta(seconds=self.skew):
                    self.version = self.cell.replace(self._record(), version)
                else:
                    if time.monotonic() >= deadline:
                        raise StoreBusy(holder)
                    time.sleep(poll)
                    continue
            except Conflict:
                continue  # another run moved first: look again
            self._thread = threading.Thread(target=self._renew_loop, daemon=True)
            self._thread.start()
            return None if holder is None or holder["released"] else holder

    def renew(self):
        """Extend the lease; raises :class:`LeaseLost` if another run took it (after it expired)."""
        with self._mutex:
            if self.lost.is_set():
                raise LeaseLost(f"run {self.run_id} lost its lease on {self.cell.url}")
            try:
                self.version = self.cell.replace(self._record(), self.version)
            except Conflict:
                self.lost.set()
                raise LeaseLost(f"run {self.run_id} lost its lease on {self.cell.url}") from None

    def check(self):
        """Before a commit: renew now, so a run that lost its lease never commits."""
        self.renew()

    def _renew_loop(self):
        while not self._stop.wait(self.renew_every):
            try:
                self.renew()
            except LeaseLost:
                return
            except Exception:  # a passing network error: try again at the next period
                continue

    def release(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        with self._mutex:
            if not self.lost.is_set():
                try:
                    self.cell.replace(self._record(released=True), self.version)
                except Conflict:
                    pass  # taken over after it expired: nothing of ours to release

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


class Manifest:
    """``store.json`` as a compare-and-swap: ``load()`` remembers the version read; ``publish(data)``
    writes only if nobody published since, else :class:`Conflict`."""

    def __init__(self, url):
        self.cell = Cell(url)
        self.version = None

    def load(self):
        data, self.version = self.cell.read()
        return None if data is None else json.loads(data)

    def publish(self, manifest):
        data = json.dumps(manifest, indent=2).encode()
        if self.version is None:
            self.version = self.cell.create(data)
        else:
            self.version = self.cell.replace(data, self.version)
