"""The encodings bench/cluster.py clusters: every lfw_dev photo's main face, by facetag and by face_recognition.

Not a benchmark itself (``bench/cluster.py`` imports it). Both are cached under ``~/.cache/facetag``:
facetag's backbone encodings by ``facetag.learn.filecache``; face_recognition's here, keyed like it
(path, size, modification time), since dlib's encoder is the slow part of the benchmark.

Protocol, the same for both tools: one face per photo, the detector's main face (large and near the
centre, ``facetag.vision.detection.main_face``'s rule); where a detector finds none, the photo's centre box
(LFW photos are face crops centred on the face), counted and reported.
"""

import glob
import os
import sys
from multiprocessing import get_context

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LFW_DEV = os.path.join(REPO, "..", "shared", "data", "lfw_dev")
DLIB_CHUNK = 64


def lfw_photos():
    """All lfw_dev photos (sorted paths) and each one's person (its folder)."""
    paths = sorted(glob.glob(os.path.join(LFW_DEV, "images", "*", "*.jpg")))
    if not paths:
        sys.exit(f"{os.path.normpath(LFW_DEV)} is absent: this benchmark needs the shared lfw_dev photos")
    return paths, np.array([p.split(os.sep)[-2] for p in paths])


def facetag_encodings(paths, model="facetag-128"):
    """(encodings, detected) of each photo's main face with facetag (backbone cached by facetag.learn.filecache)."""
    from facetag.learn.filecache import FileEncoder
    from facetag.vision.models import load_model

    found = FileEncoder(margin=0.25).encode(paths, progress=_progress("facetag"))
    return load_model(model).project(found.encodings), found.detected


def _progress(what):
    def report(done, total):
        if done % 640 == 0 or done == total:
            print(f"{what}: {done}/{total} photos encoded", file=sys.stderr, flush=True)
    return report


def _dlib_cache_file():
    from facetag.io.cachedir import default_cache_dir

    return os.path.join(default_cache_dir(), "bench-face_recognition-hog-main-centre.npz")


def _key(path):
    st = os.stat(path)
    return f"{os.path.abspath(path)}|{st.st_size}|{int(st.st_mtime)}"


def _dlib_chunk(paths):
    """face_recognition (dlib HOG detector, 128-d ResNet encoder) on a chunk of photos."""
    import face_recognition

    from facetag.vision.alignment import centre_box
    from facetag.vision.detection import main_face

    class Box:  # main_face's rule needs only .box
        def __init__(self, box):
            self.box = box

    rows = []
    for path in paths:
        image = face_recognition.load_image_file(path)
        boxes = [Box((left, top, right, bottom)) for top, right, bottom, left in face_recognition.face_locations(image)]
        face = main_face(boxes, image.shape)
        left, top, right, bottom = face.box if face else centre_box(image.shape)
        encoding = face_recognition.face_encodings(image, known_face_locations=[(top, right, bottom, left)])[0]
        rows.append((encoding, face is not None))
    return rows


def dlib_encodings(paths, processes=2):
    """(encodings, detected) of each photo's main face with face_recognition, cached."""
    cache_file = _dlib_cache_file()
    cached = {}
    if os.path.exists(cache_file):
        with np.load(cache_file) as z:
            cached = dict(zip(z["keys"].tolist(), zip(z["encodings"], z["detected"])))
    keys = [_key(p) for p in paths]
    todo = [p for p, k in zip(paths, keys) if k not in cached]
    if todo:
        chunks = [todo[i:i + DLIB_CHUNK] for i in range(0, len(todo), DLIB_CHUNK)]
        with get_context("spawn").Pool(processes) as pool:
            for n, (chunk, rows) in enumerate(zip(chunks, pool.imap(_dlib_chunk, chunks))):
                cached.update((_key(p), r) for p, r in zip(chunk, rows))
                print(f"face_recognition: {min((n + 1) * DLIB_CHUNK, len(todo))}/{len(todo)} photos encoded",
                      file=sys.stderr, flush=True)
                if n % 10 == 9 or n == len(chunks) - 1:
                    _save(cache_file, cached)
    return (np.stack([cached[k][0] for k in keys]).astype(np.float32),
            np.array([bool(cached[k][1]) for k in keys]))


def _save(cache_file, cached):
    os.makedirs(os.path.dirname(cache_file), exist_ok=True)
    keys = list(cached)
    np.savez(cache_file + ".tmp.npz", keys=np.array(keys), encodings=np.stack([cached[k][0] for k in keys]),
             detected=np.array([cached[k][1] for k in keys]))
    os.replace(cache_file + ".tmp.npz", cache_file)


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description="Fill both encoding caches (facetag's and face_recognition's) for every "
                                        "lfw_dev photo; bench/cluster.py then starts from them.").parse_args()
    photos, _ = lfw_photos()
    print("facetag", facetag_encodings(photos)[1].sum(), "detected", file=sys.stderr)
    print("face_recognition", dlib_encodings(photos)[1].sum(), "detected", file=sys.stderr)
