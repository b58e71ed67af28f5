"""The review page: a static site of face thumbnails to check an archive's results by eye.

``write_review(results, out_dir)`` writes ``index.html`` with its CSS and
script (package data in ``review_assets/``), ``data.js`` (the results, loaded
by a script tag because browsers do not let a page opened from disk fetch
files) and one small JPEG per face under ``thumbs/``, written once: a re-run
writes only the faces it has no thumbnail for. The page needs no server and no
network. It renders sections as they scroll into view and a page of faces at a
time, so 100,000 faces open as fast as 100 (``bench/review_page.py``).
"""

import datetime
import json
import os
import shlex
import shutil
from collections import defaultdict
from importlib import resources
from urllib.parse import quote

from PIL import Image

from facetag.errors import FaceTagError, ImageError
from facetag.io.files import is_remote, replaced_atomically, write_atomically
from facetag.io.images import load_image

THUMB_SIZE = 112  # pixels a side; shown at 96 CSS pixels, sharp on most high-density screens
THUMB_MARGIN = 0.25  # context kept around the box, as a fraction of its size
ASSETS = ("index.html", "review.css", "common.js", "review.js")


def thumb_name(face_id):
    """Where a face's thumbnail lives, relative to the page (two-character folders keep listings small)."""
    return f"thumbs/{face_id[:2]}/{face_id}.jpg"


def write_review(results, out_dir, store_arg, threshold, progress=None):
    """Write the review site for :class:`facetag.archive.results.Results` into ``out_dir``; returns a summary dict.

    ``store_arg`` is how the page's ``facetag name`` commands name the store;
    ``threshold`` the identification threshold the distances are judged against.
    """
    os.makedirs(out_dir, exist_ok=True)
    made, unreadable = write_thumbnails(results, out_dir, progress)
    data = page_data(results, out_dir, store_arg, threshold)
    data["summary"]["thumbnails_written"] = made
    for name in ASSETS:
        with resources.files("facetag.archive").joinpath("review_assets", name).open("rb") as src, \
                open(os.path.join(out_dir, name), "wb") as dst:
            shutil.copyfileobj(src, dst)
    data_js = os.path.join(out_dir, "data.js")
    try:
        write_atomically(data_js, "window.FACETAG_REVIEW = " + json.dumps(data, separators=(",", ":")) + ";\n")
    except OSError as e:
        raise FaceTagError(f"cannot write {data_js}: {e.strerror or e}") from e
    return {**data["summary"], "page": os.path.join(out_dir, "index.html"), "thumbnails_unreadable": unreadable}


def write_thumbnails(results, out_dir, progress=None):
    """Crop and save the thumbnails not yet written; returns (written, [(photo, reason) unreadable now])."""
    todo = defaultdict(list)
    for face in results.faces:
        if not os.path.exists(os.path.join(out_dir, thumb_name(face.face_id))):
            todo[face.path].append(face)
    written, unreadable = 0, []
    for done, (path, faces) in enumerate(sorted(todo.items()), 1):
        try:
            written += write_photo_thumbnails(path, [(f.face_id, f.box) for f in faces], out_dir)
        except ImageError as e:
            unreadable.append((path, e.reason))  # the page shows a blank tile for its faces
        if progress:
            progress(done, len(todo))
    return written, unreadable


def write_photo_thumbnails(path, faces, out_dir):
    """The thumbnails of ``faces`` (``(face_id, box)``) of the photo at ``path``, read once; returns how
    many were written. Raises ImageError when the photo cannot be read."""
    image = Image.fromarray(load_image(path))
    for face_id, box in faces:
        target = os.path.join(out_dir, thumb_name(face_id))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        crop = image.crop(_square_around(box, image.size))
        crop.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
        with replaced_atomically(target) as tmp:
            crop.save(tmp, "JPEG", quality=82)
    return len(faces)


def _square_around(box, size):
    left, top, right, bottom = box
    side = max(right - left, bottom - top) * (1 + 2 * THUMB_MARGIN)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    width, height = size
    x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    return x0, y0, min(width, round(cx + side / 2)), min(height, round(cy + side / 2))


def page_data(results, out_dir, store_arg, threshold):
    """What ``data.js`` holds: summary, photos, sections of faces, photos without a face, failures."""
    photo_index, photos = {}, []
    for photo in results.photos:
        if photo.faces:
            photo_index[photo.path] = len(photos)
            photos.append([photo.path, _href(photo.path, out_dir), photo.width or 0, photo.height or 0])

    def face_row(f):
        return [f.face_id, photo_index[f.path], *f.box, round(f.distance, 4)]

    def doubtful_first(faces):
        return sorted(faces, key=lambda f: (abs(f.distance - threshold), f.face_id))

    known, clusters, loose, unsure = defaultdict(list), defaultdict(list), [], []
    for face in results.faces:
        if face.known:
            known[face.identity].append(face)
        elif face.cluster_id:
            clusters[face.cluster_id].append(face)
        elif results.too_unsure(face):
            unsure.append(face)
        else:
            loose.append(face)
    sections = [{"kind": "identity", "name": name, "faces": [face_row(f) for f in doubtful_first(faces)]}
                for name, faces in sorted(known.items(), key=lambda kv: kv[0].lower())]
    sections += [{"kind": "cluster", "name": cluster_id, "faces": [face_row(f) for f in doubtful_first(faces)]}
                 for cluster_id, faces in sorted(clusters.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    if loose:
        sections.append({"kind": "unknown", "name": "unknown", "faces": [face_row(f) for f in doubtful_first(loose)]})
    if unsure:
        sections.append({"kind": "unsure", "name": "too unsure to group",
                         "faces": [face_row(f) for f in doubtful_first(unsure)]})
    no_face = [[p.path, p.reason] for p in results.photos if p.outcome == "no_face"]
    failed = [[p.path, p.reason] for p in results.photos if p.outcome == "failed"]
    faces = results.faces
    summary = {
        "photos": len(results.photos),
        "faces": len(faces),
        "identified": sum(f.known for f in faces),
        "unknown": sum(not f.known for f in faces),
        "identities": len(known),
        "clusters": len(clusters) if results.has_clusters else None,
        "too_unsure": len(unsure),
        "no_face": len(no_face),
        "failed": len(failed),
    }
    return {"summary": summary, "store": store_arg, "store_shell": shlex.quote(store_arg),
            "threshold": threshold, "model_id": results.model_id,
            "generated": datetime.datetime.now().isoformat(timespec="seconds"),
            "photos": photos, "sections": sections, "no_face": no_face, "failed": failed}


def _href(path, out_dir):
    """A link to the photo that still works when the review folder and the archive move together."""
    if is_remote(path):
        return path
    return quote(os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir)).replace(os.sep, "/"))

