"""Faces that fill the frame: find the main face of a photo that may be a tight face crop.

MTCNN needs some context around a face: on a thumbnail or ID photo cropped to
the face it often finds nothing. A photo without a detection is searched once
more inside a border of its mean colour, so the face no longer fills the frame
(weights/README.md has the measurement).
"""

import numpy as np

from facetag.vision.detection import Detection, main_face

#: Width of the border added for the second search, as a fraction of the photo's side on each side.
RETRY_BORDER = 0.25


def with_border(image, fraction=RETRY_BORDER):
    """The photo inside a border of its mean colour; returns (bordered image, (dx, dy) offset)."""
    height, width = image.shape[:2]
    dy, dx = round(fraction * height), round(fraction * width)
    out = np.empty((height + 2 * dy, width + 2 * dx, image.shape[2]), np.uint8)
    out[:] = np.round(image.reshape(-1, image.shape[2]).mean(axis=0)).astype(np.uint8)
    out[dy : dy + height, dx : dx + width] = image
    return out, (dx, dy)


def detect_framed(detector, image):
    """The detector's faces, or, when it finds none, those found with a border around the photo.

    Boxes are mapped back to the photo and clipped to it.
    """
    faces = detector.detect(image)
    if faces:
        return faces
    bordered, (dx, dy) = with_border(image)
    height, width = image.shape[:2]
    found = []
    for face in detector.detect(bordered):
        left, top, right, bottom = face.box
        box = (max(left - dx, 0), max(top - dy, 0), min(right - dx, width - 1), min(bottom - dy, height - 1))
        if box[2] > box[0] and box[3] > box[1]:
            found.append(Detection(box, face.score, tuple((x - dx, y - dy) for x, y in face.landmarks)))
    return found


def find_main_face(detector, image):
    """The main face (facetag.vision.detection.main_face) of ``image``, searched as :func:`detect_framed` does."""
    return main_face(detect_framed(detector, image), image.shape)
