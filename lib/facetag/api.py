"""facetag's verbs: find faces, verify two photos, identify against a gallery.

Images may be a path, the file's bytes or an RGB uint8 array. Boxes are
``(left, top, right, bottom)`` pixels. Distances are L2 between normalised
encodings (0 = identical, 2 = opposite); a pair at or below the model's
threshold is the same person: facetag.vision.models.THRESHOLDS for 1:1 verification,
the stricter IDENTIFY_THRESHOLDS for 1:K identification (both measured on lfw_dev).
"""

import os

import numpy as np

from facetag.errors import FaceTagError
from facetag.identity.gallery import Gallery
from facetag.identity.matching import Match, Verification, verify_encodings
from facetag.vision.analyzer import Face, FaceAnalyzer
from facetag.vision.models import DEFAULT_MODEL

#: What the verbs take as a photo: a path, the file's bytes, or an (H, W, 3) RGB uint8 array.
ImageLike = str | os.PathLike | bytes | np.ndarray

_analyzers = {}


def _analyzer(model):
    if model not in _analyzers:
        _analyzers[model] = FaceAnalyzer(model=model)
    return _analyzers[model]


def find_faces(image: ImageLike, model: str = DEFAULT_MODEL) -> list[Face]:
    """Every face in the photo: box, score, landmarks and encoding, highest score first."""
    return _analyzer(model).analyze(image)


def main_face_of(image: ImageLike, model: str = DEFAULT_MODEL, label: str | None = None) -> Face:
    """The face a portrait is about (largest, most central). Raises if the photo has none."""
    label = label or (image if isinstance(image, str) else "the image")
    face = _analyzer(model).main_face(image)
    if face is None:
        raise FaceTagError(f"no face found in {label}")
    return face


def verify(a: ImageLike, b: ImageLike, threshold: float | None = None, model: str = DEFAULT_MODEL) -> Verification:
    """Are the main faces of photos ``a`` and ``b`` the same person? Returns distance and decision."""
    analyzer = _analyzer(model)
    threshold = analyzer.face_model.threshold if threshold is None else threshold
    return verify_encodings(main_face_of(a, model).encoding, main_face_of(b, model).encoding, threshold)


def verify_claim(image: ImageLike, claimed: str, gallery: Gallery, model: str = DEFAULT_MODEL) -> Verification:
    """Is the main face in ``image`` the ``claimed`` person enrolled in ``gallery``?"""
    face = main_face_of(image, model)
    gallery.check_model(_analyzer(model).face_model.model_id)
    threshold = gallery.threshold if gallery.threshold is not None else _analyzer(model).face_model.threshold
    return verify_encodings(face.encoding, gallery.encodings_of(claimed), threshold)


def identify(image: ImageLike, gallery: Gallery, model: str = DEFAULT_MODEL) -> list[tuple[Face, Match]]:
    """``[(face, match), ...]`` for every face in the photo against ``gallery``."""
    faces = find_faces(image, model)
    model_id = _analyzer(model).face_model.model_id
    matches = gallery.identify_encodings(np.stack([f.encoding for f in faces]), model_id) if faces else []
    return list(zip(faces, matches))
