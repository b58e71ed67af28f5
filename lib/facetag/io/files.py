"""Files anywhere facetag reads and writes: local paths, or any Beam FileSystems URI (``gs://``, ``s3://``).

Local files are written to a temporary name beside the target and renamed over it, so a reader
sees the old file or the new one, never a part; an object store replaces an object whole on upload,
which gives the same guarantee.
"""

import contextlib
import os
import shutil
import uuid

_BLOCK = 1 << 20


def is_remote(path):
    """True for a URI with a scheme (``gs://b/x``, ``s3://b/x``); False for a local path."""
    return "://" in path


def join(base, *parts):
    """``base/part/...`` for local paths and URIs alike (facetag writes '/' in both)."""
    return "/".join([base.rstrip("/"), *parts])


@contextlib.contextmanager
def replaced_atomically(path, suffix=".tmp"):
    """Yield a temporary local path beside ``path``; when the block succeeds it replaces ``path`` at once.

    ``path``'s folder is made if needed, as object stores and Beam's local file system do. ``suffix`` ends
    the temporary name, for writers that insist on a file name ending (NumPy's ``.npz``).
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def write_atomically(path, data):
    """Replace ``path`` (local or remote) with ``data`` (bytes, or text written as UTF-8) at once."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.create(path) as f:
            f.write(data)
        return
    with replaced_atomically(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def read_bytes(path):
    """The whole file at ``path`` (local or remote); FileNotFoundError when there is none."""
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    from apache_beam.io.filesystems import FileSystems

    if not FileSystems.exists(path):
        raise FileNotFoundError(path)
    with FileSystems.open(path) as f:
        return f.read()


def copy_file(source, target):
    """Copy ``source`` to ``target``, each local or remote, in blocks; a local target is replaced at once."""
    from apache_beam.io.filesystems import FileSystems

    with contextlib.ExitStack() as stack:
        src = stack.enter_context(FileSystems.open(source) if is_remote(source) else open(source, "rb"))
        if is_remote(target):
            dst = stack.enter_context(FileSystems.create(target))
        else:
            dst = stack.enter_context(open(stack.enter_context(replaced_atomically(target)), "wb"))
        shutil.copyfileobj(src, dst, _BLOCK)


def delete_tree(path):
    """Delete the folder (or prefix of objects) ``path`` and everything below it; nothing if it is absent."""
    if not is_remote(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    from apache_beam.io.filesystems import FileSystems

    if FileSystems.exists(path):
        FileSystems.delete([path])
