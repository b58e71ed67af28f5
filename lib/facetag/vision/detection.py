"""Find faces and their five landmarks with MTCNN (the ``mtcnn`` package's weights).

Boxes everywhere in facetag are ``(left, top, right, bottom)`` in pixels of the
decoded image; landmarks are five ``(x, y)`` points in the order of
:data:`LANDMARK_NAMES`.
"""

import threading
from dataclasses import dataclass

import numpy as np

from facetag.vision.cascade import Cascade, pyramid_scales

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

#: MTCNN's final-stage confidence below which a detection is dropped. Faces in
#: LFW score 0.99 and above; 0.9 keeps profile and blurred faces while dropping
#: most false positives on textured backgrounds.
DEFAULT_MIN_SCORE = 0.9

#: Smallest face side, in pixels, the detector looks for. Below ~20 px a
#: FaceNet encoding is too blurred to identify anyone.
DEFAULT_MIN_FACE_SIZE = 20


#: Photos are searched for faces at most this large (longer side, pixels);
#: faces are still cropped from the full-resolution photo. At 1280 px a face
#: must be about 1.6% of the photo's longer side (20 px) to be found.
DETECTION_MAX_SIDE = 1280

_shared = {}
_lock = threading.RLock()


@dataclass(frozen=True)
class Detection:
    box: tuple  # (left, top, right, bottom), int pixels
    score: float
    landmarks: tuple  # five (x, y) float pairs, LANDMARK_NAMES order


class FaceDetector:
    """MTCNN face detector. Settings are stored here; the networks load on first use, one cascade per
    calling thread (each on one core, so that threads search photos side by side)."""

    def __init__(self, min_score=DEFAULT_MIN_SCORE, min_face_size=DEFAULT_MIN_FACE_SIZE):
        self.min_score = min_score
        self.min_face_size = min_face_size
        self._per_thread = threading.local()

    def _cascade(self):
        if not hasattr(self._per_thread, "cascade"):
            self._per_thread.cascade = Cascade()
        return self._per_thread.cascade

    def detect(self, image):
        """Return the faces in an (H, W, 3) RGB uint8 image, highest score first.

        Photos whose longer side exceeds DETECTION_MAX_SIDE are searched at that
        size (boxes and landmarks are mapped back to the full photo, from which
        faces are then cropped): a 12-megapixel photo's pyramid would otherwise
        start at 20-pixel faces, a thousandth of its width.
        """
        scale = min(1.0, DETECTION_MAX_SIDE / max(image.shape[:2]))
        height, width = round(image.shape[0] * scale), round(image.shape[1] * scale)
        if min(height, width) < self.min_face_size:  # no face this small is looked for (a 20000x1 strip: 1280x0)
            return []
        boxes, scores, points = self._cascade()(image, (height, width), pyramid_scales(height, width, self.min_face_size))
        # As the package's detect_faces: boxes clipped to the photo and rounded.
        boxes = np.clip(boxes, 0, [width - 1, height - 1, width - 1, height - 1]).round() / scale
        points = points / scale
        return [
            Detection(box=tuple(int(round(v)) for v in box), score=float(score),
                      landmarks=tuple(zip(point[:5].tolist(), point[5:].tolist())))
            for box, score, point in zip(boxes, scores, points)
            if score >= self.min_score
        ]


def shared_detector(min_score=DEFAULT_MIN_SCORE, min_face_size=DEFAULT_MIN_FACE_SIZE):
    """One detector per process and settings, shared by its threads (the library and the Beam DoFns use this)."""
    key = (min_score, min_face_size)
    with _lock:
        if key not in _shared:
            _shared[key] = FaceDetector(min_score, min_face_size)
        return _shared[key]


def main_face(detections, image_shape):
    """The detection a single-face photo is about: large and near the centre.

    This is the rule FaceNet's LFW alignment used: box area minus twice the
    squared distance of its centre from the image centre.
    """
    if not detections:
        return None
    cy, cx = image_shape[0] / 2, image_shape[1] / 2

    def weight(face):  # a Detection or an encoded Face: anything with a box
        left, top, right, bottom = face.box
        ox, oy = (left + right) / 2 - cx, (top + bottom) / 2 - cy
        return (right - left) * (bottom - top) - 2.0 * (ox * ox + oy * oy)

    return max(detections, key=weight)
