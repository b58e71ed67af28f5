"""What an input names: every path below a folder, a glob's matches, or a remote pattern's files.

Every path the listing sees is accounted for: a regular file is listed with
its size and modification time; anything that cannot be read as a photo (a
broken link, a named pipe, a socket or device, a link loop, a folder it may
not list, a name that is not UTF-8) is listed with the reason, so it ends in
``failed`` instead of vanishing or blocking a worker. Folders are walked,
whatever their names. Only the names in :data:`IGNORED_NAMES`, sidecars and
hidden files are passed over silently: they are other tools' bookkeeping,
never photos.

Local paths are walked here with ``os.scandir`` because Beam's local
FileSystems.match drops what it cannot stat without a word; remote paths
(``gs://``, ``s3://``...) go through Beam's FileSystems, whose listings hold
only objects.
"""

import errno
import fnmatch
import glob
import itertools
import os
import stat
from dataclasses import dataclass

from facetag.io.files import filesystems, is_remote

#: Other tools' files that live beside photos: skipped without a word.
IGNORED_NAMES = {"Thumbs.db", "desktop.ini", "@eaDir", "__MACOSX"}
#: Sidecars (metadata written beside a photo), skipped like IGNORED_NAMES.
IGNORED_SUFFIXES = (".xmp",)


@dataclass(frozen=True)
class ListedPath:
    """One path an input names. ``problem`` is None for a regular file, else why it is not read."""

    path: str
    size: int | None = None
    mtime: float | None = None
    problem: str | None = None


def is_ignored(name):
    return name.startswith(".") or name in IGNORED_NAMES or name.lower().endswith(IGNORED_SUFFIXES)


def list_paths(pattern):
    """Every path ``pattern`` (a file, a folder, a glob, or a remote pattern) names, as :class:`ListedPath`."""
    if is_remote(pattern):
        yield from _list_remote(pattern)
    elif "**" in pattern:
        yield from _recursive_glob(pattern)
    elif any(c in pattern for c in "*?["):
        for path in sorted(glob.glob(pattern)):
            yield classify(path)
    elif os.path.isdir(pattern):
        yield from _walk(pattern, set())
    else:
        yield classify(pattern)


def _list_remote(pattern):
    fs = filesystems(pattern)
    if pattern.endswith("/"):
        pattern += "**"
    found = fs.match([pattern])[0].metadata_list
    if not found and not any(c in pattern for c in "*?["):
        found = fs.match([pattern + "/**"])[0].metadata_list  # a folder named without its "/"
    for m in found:
        if not is_ignored(m.path.rstrip("/").rsplit("/", 1)[-1]):
            yield ListedPath(m.path, m.size_in_bytes, m.last_updated_in_seconds)


def _recursive_glob(pattern):
    """A '**' glob's files, found by walking (glob.glob would follow a link loop forty levels deep)."""
    parts = pattern.split("/")
    fixed = list(itertools.takewhile(lambda part: not any(c in part for c in "*?["), parts))
    root = "/".join(fixed) or ("/" if pattern.startswith("/") else ".")
    patterns = {pattern, pattern.replace("/**/", "/"), pattern.removeprefix("**/")}
    for listed in _walk(root, set()):
        path = listed.path.removeprefix("./") if root == "." else listed.path
        if any(fnmatch.fnmatchcase(path, p) for p in patterns):
            yield ListedPath(path, listed.size, listed.mtime, listed.problem)


def _walk(folder, seen):
    real = os.path.realpath(folder)
    if real in seen:
        yield ListedPath(folder, problem="a symbolic link that loops back to a folder above it: not followed")
        return
    seen = seen | {real}
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        reason = ("permission denied: facetag may not list this folder (check its owner and mode)"
                  if isinstance(e, PermissionError) else f"cannot list this folder: {e.strerror or e}")
        yield ListedPath(folder, problem=reason) if _is_utf8(folder) else classify(folder)
        return
    for entry in entries:
        if is_ignored(entry.name):
            continue
        try:
            is_dir = entry.is_dir()  # follows links
        except OSError:
            is_dir = False
        if is_dir:
            yield from _walk(entry.path, seen)
        else:
            yield classify(entry.path)


def classify(path):
    """A local path as :class:`ListedPath`, from its details alone: nothing is opened."""
    if not _is_utf8(path):
        return ListedPath(os.fsencode(path).decode("utf-8", "backslashreplace"),
                          problem="the file name is not UTF-8 (the bytes shown as \\xNN): rename it, e.g. with "
                                  "'convmv -f latin1 -t utf8' (facetag's outputs hold only UTF-8 names)")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return ListedPath(path, problem=f"a broken symbolic link (to {os.readlink(path)}, which does not exist)")
        return ListedPath(path, problem="no such file")
    except OSError as e:
        if e.errno == errno.ELOOP:
            return ListedPath(path, problem="a symbolic link that loops (it leads back to itself): not followed")
        if os.path.islink(path):
            return ListedPath(path, problem=f"a symbolic link that cannot be followed ({e.strerror or e})")
        return ListedPath(path, problem=f"cannot read the file's details: {e.strerror or e}")
    if stat.S_ISREG(st.st_mode):
        return ListedPath(path, st.st_size, st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        return ListedPath(path, problem="a folder, not a photo: give the folder itself to read the photos in it")
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "a device file" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a special file")
    return ListedPath(path, problem=f"{kind}, not a photo: never opened")


def _is_utf8(path):
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:  # os.scandir gives undecodable bytes as lone surrogates
        return False
