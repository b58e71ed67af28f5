"""A photo decoded for its faces: small enough to search quickly, sharp enough to crop faces from.

A camera JPEG is decoded at the smallest of 1/1, 1/2, 1/4 and 1/8 of its size
that the detector still searches at full detail (facetag.io.images.decode_reduced,
DETECTION_MAX_SIDE). Each face is then cropped from that decode when the crop
spans at least the encoder's CROP_SIZE pixels there, so it is only ever shrunk
to the encoder's input as a full-size crop would be; a smaller face is
cropped from a larger decode of the same file, made once per photo when the
first such face needs it. Aligned chips (dlib's encoder) are chosen the same way. Boxes and
landmarks are in pixels of the full-size photo, as everywhere in facetag.
"""

import math

from facetag.io.images import decode_reduced
from facetag.io.limits import DEFAULT_LIMITS
from facetag.vision.alignment import CROP_SIZE, DEFAULT_MARGIN, align_face, chip_scale, crop_face, crop_region
from facetag.vision.detection import DETECTION_MAX_SIDE, Detection
from facetag.vision.framing import detect_framed


class Photo:
    """``Photo(data, label)``: the decoded photo (``image``, ``scale``, full-size ``width`` x ``height``).

    Raises facetag.errors.ImageError, naming ``label``, for a file that cannot be decoded.
    """

    def __init__(self, data, label, limits=DEFAULT_LIMITS):
        self._data, self._label, self._limits = data, label, limits
        decoded = decode_reduced(data, label, limits=limits, min_side=DETECTION_MAX_SIDE)
        self.image, self.scale = decoded.image, decoded.scale
        self.width, self.height = decoded.size
        self._decodes = {decoded.scale: decoded}  # decodes made so far, by scale

    def detect(self, detector):
        """The faces :func:`facetag.vision.framing.detect_framed` finds, in full-size pixels."""
        found = detect_framed(detector, self.image)
        if self.scale == 1:
            return found
        return [Detection(tuple(v * self.scale for v in d.box), d.score,
                          tuple((x * self.scale, y * self.scale) for x, y in d.landmarks)) for d in found]

    def crop(self, box, margin=DEFAULT_MARGIN):
        """:func:`facetag.vision.alignment.crop_face` of the full-size photo's ``box``, from the smallest decode
        in which the margined crop is at least CROP_SIZE pixels across."""
        left, top, right, bottom = crop_region(box, margin)
        side = max(right - left, bottom - top)
        scale = self.scale
        while scale > 1 and side / scale < CROP_SIZE:
            scale //= 2
        decoded = self._decoded(scale)
        return crop_face(decoded.image, tuple(v / decoded.scale for v in box), margin=margin)

    def chip(self, landmarks):
        """:func:`facetag.vision.alignment.align_face` of the full-size photo's face with ``landmarks``, from the
        smallest decode in which the face is at least as large as on the chip."""
        scale = self.scale
        while scale > 1 and chip_scale([(x / scale, y / scale) for x, y in landmarks]) > 1:
            scale //= 2
        decoded = self._decoded(scale)
        return align_face(decoded.image, [(x / decoded.scale, y / decoded.scale) for x, y in landmarks])

    def _decoded(self, scale):
        if scale not in self._decodes:
            self._decodes[scale] = decode_reduced(self._data, self._label, limits=self._limits,
                                                  min_side=math.ceil(max(self.width, self.height) / scale))
        return self._decodes[scale]
