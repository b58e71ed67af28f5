"""Labelled photo collections: a folder of ``Name/photo`` files, or a CSV of ``file,identity``."""

import csv
import io
import os

import numpy as np
from PIL import Image

from facetag.errors import FaceTagError
from facetag.io.files import is_remote, join, read_bytes
from facetag.io.listing import list_paths

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def read_labelled(source):
    """``[(path, identity), ...]`` from a ``Name/photo`` folder or a ``file,identity`` CSV, sorted.

    A CSV's relative paths are relative to the CSV's folder; a header row
    naming ``file`` (or ``uri``) and ``identity`` is required.
    """
    if is_remote(source):
        return _read_csv(source) if source.lower().endswith(".csv") else _read_remote_folder(source)
    if os.path.isdir(source):
        return _read_folder(source)
    if os.path.isfile(source) and source.lower().endswith(".csv"):
        return _read_csv(source)
    raise FaceTagError(f"{source} is neither a folder of Name/photo images nor a CSV of file,identity")


def _read_folder(folder):
    items = []
    for name in sorted(os.listdir(folder)):
        person = os.path.join(folder, name)
        if os.path.isdir(person):
            items += [(os.path.join(person, f), name) for f in sorted(os.listdir(person))
                      if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES]
    if not items:
        raise FaceTagError(f"{folder} holds no Name/photo images (one sub-folder per person)")
    return items


def _read_remote_folder(prefix):
    """``Name/photo`` objects below ``prefix`` (``s3://b/people``), from one listing."""
    prefix = prefix.rstrip("/") + "/"
    items = []
    for listed in list_paths(prefix):
        parts = listed.path[len(prefix):].split("/")
        if len(parts) == 2 and os.path.splitext(parts[1])[1].lower() in IMAGE_SUFFIXES:
            items.append((listed.path, parts[0]))
    if not items:
        raise FaceTagError(f"{prefix} holds no Name/photo images (one sub-folder per person)")
    return sorted(items)


def _read_csv(path):
    if is_remote(path):
        base = path.rsplit("/", 1)[0]
        rows = list(csv.DictReader(io.StringIO(read_bytes(path).decode("utf-8"))))
    else:
        base = os.path.dirname(os.path.abspath(path))
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    column = "file" if rows and "file" in rows[0] else "uri"
    if not rows or column not in rows[0] or "identity" not in rows[0]:
        raise FaceTagError(f"{path} needs a header with 'file' (or 'uri') and 'identity' columns")
    items = []
    for row in rows:
        uri = row[column]
        if not is_remote(uri) and not os.path.isabs(uri):
            uri = join(base, uri)
        items.append((uri, row["identity"]))
    return sorted(items)


def pair_people(pairs_file):
    """Every person named in an LFW pairs file: they must stay out of training."""
    people = set()
    with open(pairs_file) as f:
        for line in list(f)[1:]:
            parts = line.split()
            if len(parts) == 3:
                people.add(parts[0])
            elif len(parts) == 4:
                people.update((parts[0], parts[2]))
    return people


def is_grey(path):
    """True for a photo without colour: a grey mode, or RGB channels equal within 2 levels."""
    with Image.open(path) as image:
        if image.mode in ("L", "LA", "I", "I;16", "1"):
            return True
        rgb = np.asarray(image.convert("RGB").resize((64, 64)), np.int16)
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 2 and np.abs(rgb[..., 1] - rgb[..., 2]).max() <= 2)
