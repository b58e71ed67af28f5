"""Detections, backbone encodings and dlib's chip encodings (facetag-256) of image files, cached on disk.

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
from PIL import Image

from facetag.io.cachedir import default_cache_dir
from facetag.io.files import replaced_atomically, write_atomically
from facetag.io.images import load_image
from facetag.vision.alignment import (
    CHIP_VERSION,
    CROP_SIZE,
    DEFAULT_BORDER,
    PREPROCESSING_VERSION,
    align_face,
    centre_box,
    crop_face,
    crop_inside,
    crop_region,
    mean_face_in,
)
from facetag.vision.backbone import DEFAULT_PRECISION, load_backbone
from facetag.vision.detection import DEFAULT_MIN_SCORE, shared_detector
from facetag.vision.dlib_encoder import ENCODING_SIZE as DLIB_ENCODING_SIZE
from facetag.vision.dlib_encoder import load_dlib_encoder
from facetag.vision.framing import find_main_face


def file_key(path):
    """What a file's cache entries are keyed by: its absolute path, size and modification time."""
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

    The main face is searched as facetag.vision.framing does (a second search inside a
    border when the first finds nothing). ``fallback``: what to do when neither
    finds a face. ``"centre"`` crops the centre of the image
    (``centre_fraction`` of its shorter side: right for photos that are
    already face crops, such as LFW); ``"none"`` leaves a zero encoding and
    ``detected`` False, for the caller to count as a failure. ``border``: see
    facetag.vision.alignment.DEFAULT_BORDER. Other views of a face, for training:
    ``flip`` encodes the mirror image of each crop, ``grey`` its grey copy,
    and ``tight`` (a size in pixels) the face as a tool that exports tight
    crops would: the bare box resized to tight x tight, then cropped as usual. ``precision``: the
    backbone's (facetag.vision.backbone.PRECISIONS).
    """

    def __init__(self, margin, min_score=DEFAULT_MIN_SCORE, fallback="centre", flip=False, cache_dir=None,
                 border=DEFAULT_BORDER, centre_fraction=0.5, grey=False, tight=None, precision=DEFAULT_PRECISION):
        self.margin = margin
        self.precision = precision
        self.flip = flip
        self.grey = grey
        self.tight = tight
        self.border = border
        self.centre_fraction = centre_fraction
        self.min_score = min_score
        self.fallback = fallback
        self.cache_dir = cache_dir or default_cache_dir()

    def main_faces(self, paths):
        """``{path: [box, score, landmarks] or None}``: the main face :meth:`encode` found in each file, read
        from the cache (for measurements that crop the faces their own way)."""
        with open(self._detections_file()) as f:
            detections = json.load(f)
        return {p: detections[file_key(p)]["face"] for p in paths}

    def model_encodings(self, model, paths, progress=None):
        """:class:`FileEncodings` of ``model`` (a facetag.vision.models.FaceModel): the backbone's encodings
        (:meth:`encode`) through its head, and for a model that uses chips joined to dlib's encodings of the same
        main faces' aligned chips (:meth:`dlib_encodings`)."""
        files = self.encode(paths, progress=progress)
        files.encodings = model.project(files.encodings)
        if model.uses_chips:
            files.encodings = model.join(files.encodings, self.dlib_encodings(paths, model.dlib))
        return files

    def dlib_encodings(self, paths, encoder=None):
        """(N, 128) unit encodings by dlib's ResNet (``encoder``, default the int8 one) of each file's main face
        (as :meth:`encode` found it; call that first), aligned by its landmarks under this encoder's views; a
        photo without a detected face gets the chip of the mean face placed in the box :meth:`encode` crops (or
        zeros, without a fallback)."""
        encoder = encoder or load_dlib_encoder()
        with open(self._detections_file()) as f:
            detections = json.load(f)
        path = self._encodings_file(encoder.encoder_id, CHIP_VERSION)
        cached = {}
        if os.path.exists(path):
            with np.load(path, allow_pickle=False) as z:
                cached = dict(zip(z["keys"].tolist(), z["encodings"]))
        keys = [file_key(p) for p in paths]
        entry_keys = [self._entry_key(k, detections[k]) for k in keys]
        todo = [i for i, k in enumerate(entry_keys) if k not in cached]
        for chunk_start in range(0, len(todo), 64):
            chunk = todo[chunk_start : chunk_start + 64]
            chips = {i: self._chip(load_image(paths[i]), detections[keys[i]]) for i in chunk}
            found = [i for i in chunk if chips[i] is not None]
            encodings = encoder.encode(np.stack([chips[i] for i in found])) if found else []
            cached.update(dict.fromkeys([entry_keys[i] for i in chunk], np.zeros(DLIB_ENCODING_SIZE, np.float32)))
            cached.update({entry_keys[i]: e for i, e in zip(found, encodings)})
            with replaced_atomically(path, suffix=".npz") as temporary:
                np.savez(temporary, keys=np.array(list(cached)), encodings=np.stack(list(cached.values())))
        return np.stack([cached[k] for k in entry_keys]) if keys else np.zeros((0, DLIB_ENCODING_SIZE), np.float32)

    def _chip(self, image, entry):
        box = self._box(entry)
        if box is None:
            return None
        landmarks = np.asarray(entry["face"][2], np.float64) if entry["face"] is not None else mean_face_in(box)
        if self.tight:
            x0, y0, x1, y1 = crop_region(box, 0.0)
            image = crop_face(image, box, margin=0.0, size=self.tight, border=self.border)
            landmarks = (landmarks - (x0, y0)) * (self.tight / (x1 - x0), self.tight / (y1 - y0))
        return self._as_viewed(align_face(image, landmarks))

    def _detections_file(self):
        return os.path.join(self.cache_dir, f"detections-framed-mtcnn-{self.min_score}.json")

    def _encodings_file(self, encoder_id, preprocessing=PREPROCESSING_VERSION):
        view = f"{'-flip' if self.flip else ''}{'-grey' if self.grey else ''}{f'-tight{self.tight}' if self.tight else ''}"
        fallback = self.fallback + (f"{self.centre_fraction}" if self.fallback == "centre" else "")
        margin = f"-m{self.margin}" if preprocessing == PREPROCESSING_VERSION else ""
        name = f"{encoder_id}-{preprocessing}{margin}-{fallback}-s{self.min_score}{view}.npz"
        return os.path.join(self.cache_dir, name)

    def _box(self, entry):
        """The box to crop, or None (a miss without fallback); ``entry`` is a detections-cache entry."""
        if entry["face"] is not None:
            return tuple(entry["face"][0])
        return centre_box(entry["shape"], self.centre_fraction) if self.fallback == "centre" else None

    def _entry_key(self, key, entry):
        # Crops that stay inside the photo look the same under every border, so they share an entry.
        box = self._box(entry)
        inside = self.tight is None and (box is None or crop_inside(entry["shape"], box, self.margin))
        return key if inside else f"{key}|{self.border}"

    def _crop(self, image, box):
        if self.tight:
            image = crop_face(image, box, margin=0.0, size=self.tight, border=self.border)
            box = (0, 0, self.tight - 1, self.tight - 1)
        return self._as_viewed(crop_face(image, box, margin=self.margin, border=self.border))

    def _as_viewed(self, face):
        """A crop or chip under this encoder's ``grey`` and ``flip`` views."""
        if self.grey:
            face = np.repeat(np.asarray(Image.fromarray(face).convert("L"))[..., None], 3, axis=2)
        return face[:, ::-1] if self.flip else face

    def encode(self, paths, progress=None):
        os.makedirs(self.cache_dir, exist_ok=True)
        backbone = load_backbone(self.precision)
        det_file, enc_file = self._detections_file(), self._encodings_file(f"backbone-{backbone.backbone_id}")
        detections = {}
        if os.path.exists(det_file):
            with open(det_file) as f:
                detections = json.load(f)
        cached = {}
        if os.path.exists(enc_file):
            with np.load(enc_file, allow_pickle=False) as z:
                cached = dict(zip(z["keys"].tolist(), zip(z["encodings"], z["detected"])))
        keys = [file_key(p) for p in paths]
        entry_keys = [self._entry_key(k, detections[k]) if k in detections else None for k in keys]
        todo = [i for i, k in enumerate(entry_keys) if k not in cached]
        detector = shared_detector(self.min_score)
        start = time.perf_counter()
        for n, chunk_start in enumerate(range(0, len(todo), 64)):
            chunk = todo[chunk_start : chunk_start + 64]
            crops, found = [], []
            for i in chunk:
                image = load_image(paths[i])
                if keys[i] not in detections:
                    face = find_main_face(detector, image)
                    detections[keys[i]] = {"face": None if face is None else [face.box, face.score, face.landmarks],
                                           "shape": list(image.shape[:2])}
                    entry_keys[i] = self._entry_key(keys[i], detections[keys[i]])
                box = self._box(detections[keys[i]])
                crops.append(self._crop(image, box) if box else np.zeros((CROP_SIZE, CROP_SIZE, 3), np.uint8))
                found.append(detections[keys[i]]["face"] is not None)
            encs = backbone.encode(np.stack(crops))
            for i, e, f in zip(chunk, encs, found):
                cached[entry_keys[i]] = (e if f or self.fallback == "centre" else np.zeros_like(e), f)
            if progress:
                progress(min(chunk_start + 64, len(todo)), len(todo))
            if n % 10 == 9 or chunk_start + 64 >= len(todo):
                self._save(det_file, enc_file, detections, cached)
        elapsed = time.perf_counter() - start
        encodings = np.stack([cached[k][0] for k in entry_keys]) if keys else np.zeros((0, 512), np.float32)
        detected = np.array([bool(cached[k][1]) for k in entry_keys], bool)
        return FileEncodings(list(paths), encodings, detected, elapsed / len(todo) if todo else 0.0, len(todo))

    @staticmethod
    def _save(det_file, enc_file, detections, cached):
        write_atomically(det_file, json.dumps(detections))
        keys = list(cached)
        with replaced_atomically(enc_file, suffix=".npz") as tmp:
            np.savez(
                tmp,
                keys=np.array(keys),
                encodings=np.stack([cached[k][0] for k in keys]).astype(np.float32),
                detected=np.array([cached[k][1] for k in keys], bool),
            )
