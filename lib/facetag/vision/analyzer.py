"""From a photo to faces: detect, crop (and align, for a model that uses chips), encode."""

from dataclasses import dataclass

import numpy as np

from facetag.io.images import image_source
from facetag.vision.alignment import DEFAULT_MARGIN, align_face, crop_face
from facetag.vision.detection import DEFAULT_MIN_SCORE, main_face, shared_detector
from facetag.vision.framing import detect_framed
from facetag.vision.models import DEFAULT_MODEL, load_model
from facetag.vision.photo import Photo


@dataclass
class Face:
    box: tuple  # (left, top, right, bottom) pixels
    score: float  # detector confidence
    landmarks: tuple  # five (x, y), see facetag.vision.detection.LANDMARK_NAMES
    encoding: np.ndarray  # float32, L2-normalised


class FaceAnalyzer:
    """Find and encode every face in a photo.

    ``model`` names the encoding model (see :mod:`facetag.vision.models`),
    ``min_score`` the detector confidence a face needs, ``margin`` the context
    kept around each box. Models load on first use, once per process.
    """

    def __init__(self, model=DEFAULT_MODEL, min_score=DEFAULT_MIN_SCORE, margin=DEFAULT_MARGIN):
        self.model = model
        self.min_score = min_score
        self.margin = margin

    @property
    def face_model(self):
        return load_model(self.model)

    def detect(self, image):
        """MTCNN's faces; for a photo where it finds none, a second search inside a border (facetag.vision.framing)."""
        return detect_framed(shared_detector(self.min_score), image)

    def analyze(self, image):
        """Faces in an RGB uint8 array, a path or image bytes; highest score first.

        A path or bytes is decoded as the Beam jobs do (facetag.vision.photo: a large JPEG at a reduced size).
        """
        return self._analyzed(image)[0]

    def main_face(self, image):
        """The face a portrait is about (facetag.vision.detection.main_face), or None."""
        faces, shape = self._analyzed(image)
        return main_face(faces, shape)

    def _analyzed(self, image):
        """(faces, the photo's full-size (height, width))."""
        if isinstance(image, np.ndarray):
            detections = self.detect(image)
            crops = [crop_face(image, d.box, margin=self.margin) for d in detections]
            chips = [align_face(image, d.landmarks) for d in detections] if self.face_model.uses_chips else None
            shape = image.shape[:2]
        else:
            photo = Photo(*image_source(image))
            detections = photo.detect(shared_detector(self.min_score))
            crops = [photo.crop(d.box, self.margin) for d in detections]
            chips = [photo.chip(d.landmarks) for d in detections] if self.face_model.uses_chips else None
            shape = (photo.height, photo.width)
        if not detections:
            return [], shape
        encodings = self.face_model.encode(np.stack(crops), None if chips is None else np.stack(chips))
        return [Face(d.box, d.score, d.landmarks, e) for d, e in zip(detections, encodings)], shape

