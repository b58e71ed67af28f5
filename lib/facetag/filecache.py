"""Detections and backbone encodings of image files, cached on disk.

Evaluation and training read the same thousands of photos many times; their
detections and 512-d backbone encodings are computed once and kept under
``cache_dir`` (default ``~/.cache/facetag``, or ``$FACETAG_CACHE``). Entries are
keyed by the file's path, size and modification time, the detector settings,
and the backbone checksum with the crop settings, so a changed photo or model
is recomputed.
"""

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from facetag.alignment import CROP_SIZE, PREPROCESSING_VERSION, centre_box, crop_face
from facetag.backbone import load_backbone
from facetag.detection import DEFAULT_MIN_SCORE, main_face, shared_detector
from facetag.images import load_image


def default_cache_dir():
    return os.environ.get("FACETAG_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "facetag")


def _file_key(path):
    st = os.stat(path)
    return f"{os.path.abspath(path)}|{st.st_size}|{int(st.st_mtime)}"


@dataclass
class FileEncodings:
    paths: list
    encodings: np.ndarray  # (N, 512) backbone encodings
    detected: np.ndarray  # (N,) bool: False where the detector found no face
    seconds_per_image: float  # detection + encoding time of the images computed in this call (0 if all cached)
    computed: int  # how many images were computed rather than read from the cache


class FileEncoder:
    """Backbone encodings of the main face of each file, with the centre fallback for misses.

    ``fallback``: what to do when the detector finds no face. ``"centre"``
    crops the centre of the image (right for photos that are already face
    crops, such as LFW); ``"none"`` leaves a zero encoding and ``detected``
    False, for the caller to count as a failure. ``flip`` encodes the mirror
    image of each crop instead (a second view of a face, for training).
    """

    def __init__(self, margin, min_score=DEFAULT_MIN_SCORE, fallback="centre", flip=False, cache_dir=None):
        self.margin = margin
        self.flip = flip
        self.min_score = min_score
        self.fallback = fallback
        self.cache_dir = cache_dir or default_cache_dir()

    def _detections_file(self):
        return os.path.join(self.cache_dir, f"detections-mtcnn-{self.min_score}.json")

    def _encodings_file(self, backbone):
        name = f"backbone-{backbone.sha256[:12]}-{PREPROCESSING_VERSION}-m{self.margin}-{self.fallback}-s{self.min_score}{'-flip' if self.flip else ''}.npz"
        return os.path.join(self.cache_dir, name)

    def encode(self, paths, progress=None):
        os.makedirs(self.cache_dir, exist_ok=True)
        backbone = load_backbone()
        det_file, enc_file = self._detections_file(), self._encodings_file(backbone)
        detections = {}
        if os.path.exists(det_file):
            with open(det_file) as f:
                detections = json.load(f)
        cached = {}
        if os.path.exists(enc_file):
            with np.load(enc_file, allow_pickle=False) as z:
                cached = dict(zip(z["keys"].tolist(), zip(z["encodings"], z["detected"])))
        keys = [_file_key(p) for p in paths]
        todo = [i for i, k in enumerate(keys) if k not in cached]
        detector = shared_detector(self.min_score)
        start = time.perf_counter()
        for n, chunk_start in enumerate(range(0, len(todo), 64)):
            chunk = todo[chunk_start : chunk_start + 64]
            crops, found = [], []
            for i in chunk:
                image = load_image(paths[i])
                if keys[i] not in detections:
                    face = main_face(detector.detect(image), image.shape)
                    detections[keys[i]] = None if face is None else [face.box, face.score, face.landmarks]
                entry = detections[keys[i]]
                if entry is not None:
                    box = tuple(entry[0])
                elif self.fallback == "centre":
                    box = centre_box(image.shape)
                else:
                    box = None
                crops.append(crop_face(image, box, margin=self.margin) if box else np.zeros((CROP_SIZE, CROP_SIZE, 3), np.uint8))
                found.append(entry is not None)
            crops = np.stack(crops)
            encs = backbone.encode(crops[:, :, ::-1] if self.flip else crops)
            for i, e, f in zip(chunk, encs, found):
                cached[keys[i]] = (e if f or self.fallback == "centre" else np.zeros_like(e), f)
            if progress:
                progress(min(chunk_start + 64, len(todo)), len(todo))
            if n % 10 == 9 or chunk_start + 64 >= len(todo):
                self._save(det_file, enc_file, detections, cached)
        elapsed = time.perf_counter() - start
        encodings = np.stack([cached[k][0] for k in keys]) if keys else np.zeros((0, 512), np.float32)
        detected = np.array([bool(cached[k][1]) for k in keys], bool)
        return FileEncodings(list(paths), encodings, detected, elapsed / len(todo) if todo else 0.0, len(todo))

    @staticmethod
    def _save(det_file, enc_file, detections, cached):
        with open(det_file + ".tmp", "w") as f:
            json.dump(detections, f)
        os.replace(det_file + ".tmp", det_file)
        keys = list(cached)
        np.savez(
            enc_file + ".tmp.npz",
            keys=np.array(keys),
            encodings=np.stack([cached[k][0] for k in keys]).astype(np.float32),
            detected=np.array([cached[k][1] for k in keys], bool),
        )
        os.replace(enc_file + ".tmp.npz", enc_file)
