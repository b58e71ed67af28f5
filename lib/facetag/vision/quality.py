"""How usable a detected face is for telling people apart: one score in [0, 1] from what detection gives.

Four factors, each 1 at or above a level where it no longer limits recognition and falling linearly
to 0 below it; the quality is the smallest (a face is as usable as its worst trait):

* size: the box's shorter side in the photo's pixels, against :data:`GOOD_SIZE`;
* sharpness: the variance of the Laplacian of the grey 160x160 crop, against :data:`GOOD_SHARPNESS`;
* pose: how far the nose sits sideways from the midpoint of the eyes and mouth corners, in
  interocular distances (0 frontal, about 0.5 in profile), 1 up to :data:`FRONTAL_YAW`, 0 at :data:`WORST_YAW`;
* detection score: MTCNN's, from :data:`LOWEST_SCORE` (1 at 1.0).

The levels are set so that lfw_dev's 250x250 faces, which the encoder handles well, mostly score 1
(bench/quality_levers.py prints each factor's distribution there). On lfw_dev no factor tells the
faces that clustering puts with a stranger from the others (bench/RESULTS.md, "Face quality"), so the
clustering gate that uses this score is off by default (facetag.identity.clustering.DEFAULT_MIN_QUALITY).
"""

import cv2
import numpy as np

GOOD_SIZE = 60  # pixels: FaceNet's 160-px crop of a face this size is still a clean upscale
GOOD_SHARPNESS = 40.0  # Laplacian variance on the crop; lfw_dev's median is 69, its 5th percentile 27
FRONTAL_YAW = 0.15  # nose offset (interocular distances) still counted frontal; lfw_dev's median is 0.09
WORST_YAW = 0.5  # nose offset of a face in profile
LOWEST_SCORE = 0.9  # facetag.vision.detection.DEFAULT_MIN_SCORE: no face is kept below it


def _ramp(value, zero, one):
    return min(1.0, max(0.0, float(value - zero) / (one - zero)))


def size_factor(box):
    left, top, right, bottom = box
    return _ramp(min(right - left, bottom - top), 0, GOOD_SIZE)


def sharpness(crop):
    """Variance of the Laplacian of the grey crop (uint8 RGB, any size): low for blurred faces."""
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    # 16-bit integers hold a 3x3 Laplacian of uint8 exactly, and cost a fifth of float64's time.
    _, deviation = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))
    return float(deviation[0, 0]) ** 2


def yaw_offset(landmarks):
    """The nose's sideways offset from the midpoint of eyes and mouth corners, in interocular distances.

    ``landmarks``: five (x, y) points, facetag.vision.detection.LANDMARK_NAMES order (or their ten numbers).
    """
    left_eye, right_eye, nose, mouth_left, mouth_right = np.asarray(landmarks, np.float64).reshape(5, 2)
    across = right_eye - left_eye
    eyes_apart = np.linalg.norm(across)
    if eyes_apart < 1e-6:
        return WORST_YAW
    middle = (left_eye + right_eye + mouth_left + mouth_right) / 4
    return float(abs(np.dot(nose - middle, across / eyes_apart)) / eyes_apart)


def face_quality(box, score, landmarks, crop):
    """The face's quality in [0, 1] (see the module docstring); ``crop`` is the encoder's crop of it."""
    return min(size_factor(box), _ramp(sharpness(crop), 0, GOOD_SHARPNESS),
               _ramp(yaw_offset(landmarks), WORST_YAW, FRONTAL_YAW), _ramp(score, LOWEST_SCORE, 1.0))
