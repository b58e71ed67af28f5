"""SHA-256 of files: model ids and index metadata are built from them."""

import functools
import hashlib
import os


def file_sha256(path):
    """The file's SHA-256, computed once per process for each version (size, modification time) of it."""
    stat = os.stat(path)
    return _sha256(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path, size, mtime_ns):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
