"""Small objects written by compare-and-swap: read with a version, written only if nobody wrote meanwhile.

facetag's commit point (``store.json``) and the run lease of a remote store are such objects. On an
object store (``s3://``, ``gs://``, ``az://``) they go through ``obstore`` (Rust ``object_store``, the
library delta-rs uses): :meth:`Cell.create` is a PUT with ``If-None-Match: *``, :meth:`Cell.replace` a
PUT with ``If-Match: <etag>`` (S3, MinIO) or a generation precondition (GCS). The endpoint, region and
credentials come from the standard variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``... and
``AWS_ALLOW_HTTP=true`` for an http endpoint; ``GOOGLE_*`` for GCS), as for delta-rs.

On a local folder, ``flock`` on the folder makes read-compare-rename one step (object_store's local
file system has no update mode); readers need no lock, as the file is replaced by a rename.
"""

import contextlib
import fcntl
import hashlib
import os

from facetag.io.files import is_remote, write_atomically


class Conflict(Exception):
    """The object changed (or appeared) since it was read: the compare-and-swap did not happen."""


class Cell:
    """The small object at ``url`` (``s3://bucket/key``, ``gs://...``, or a local path).

    ``read()`` gives ``(data or None, version)``; ``create(data)`` and ``replace(data, version)``
    return the new version, or raise :class:`Conflict` when the object exists / changed since
    ``version`` was read.
    """

    def __new__(cls, url):
        if cls is Cell:
            cls = _ObjectCell if is_remote(url) else _LocalCell
        return super().__new__(cls)

    def __init__(self, url):
        self.url = url


class _ObjectCell(Cell):
    def __init__(self, url):
        from obstore.store import from_url

        super().__init__(url)
        parent, self.key = url.rsplit("/", 1)
        self._store = from_url(parent + "/")

    def read(self):
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            got = obstore.get(self._store, self.key)
        except (NotFoundError, FileNotFoundError):
            return None, None
        return bytes(got.bytes()), _version(got.meta)

    def create(self, data):
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            return _version(obstore.put(self._store, self.key, data, mode="create"))
        except (AlreadyExistsError, PreconditionError, FileExistsError) as e:
            raise Conflict(f"{self.url} exists") from e

    def replace(self, data, version):
        import obstore
        from obstore.exceptions import NotFoundError, PreconditionError

        try:
            return _version(obstore.put(self._store, self.key, data, mode=version))
        except (PreconditionError, NotFoundError, FileNotFoundError) as e:
            raise Conflict(f"{self.url} changed since it was read") from e


def _version(meta):
    """obstore's UpdateVersion: the ETag (S3's If-Match) and the version (GCS's generation), where given."""
    return {k: meta[k] for k in ("e_tag", "version") if meta.get(k) is not None}


class _LocalCell(Cell):
    @staticmethod
    def _version(data):
        return None if data is None else {"e_tag": hashlib.sha256(data).hexdigest()}

    def _current(self):
        try:
            with open(self.url, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def read(self):
        data = self._current()
        return data, self._version(data)

    @contextlib.contextmanager
    def _folder_locked(self):
        folder = os.path.dirname(os.path.abspath(self.url))
        os.makedirs(folder, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _swap(self, data, expect):
        with self._folder_locked():
            if self._version(self._current()) != expect:
                raise Conflict(f"{self.url} {'exists' if expect is None else 'changed since it was read'}")
            write_atomically(self.url, bytes(data))
        return self._version(bytes(data))

    def create(self, data):
        return self._swap(data, None)

    def replace(self, data, version):
        return self._swap(data, version)
