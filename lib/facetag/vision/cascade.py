"""MTCNN's three-network cascade: the networks on LiteRT, the glue in NumPy and OpenCV.

The ``mtcnn`` package supplies the networks and their weights
(facetag.vision.runtime converts them); its own ``MTCNN.detect_faces`` runs
them eagerly in TensorFlow with NumPy between the stages. Here the same
stages run without TensorFlow, which a process would otherwise spend seconds
importing before its first photo:

0. the photo, if larger than the size it is searched at, is shrunk (OpenCV's
   area averaging, as TensorFlow's ``AREA`` resize the package uses);
1. PNet over the scale pyramid, proposals above ``PNET_THRESHOLD``, NMS per
   level and across levels;
2. RNet on 24x24 crops of the proposals, NMS;
3. ONet on 48x48 crops: final boxes, scores and the five landmarks.

Every threshold, the pyramid and the suppression rule are the package's
(mtcnn 1.0.0), so the same faces come out; coordinates are computed in
float64 as the package does. The package's own NumPy steps (its NMS, box
arithmetic) are written out here rather than imported: importing any
``mtcnn`` module imports TensorFlow. Suppression compares each box with at most
``NMS_BLOCK`` others at a time, so a crowd's thousands of proposals need
linear memory (the package holds all pairs at once).
"""

import numpy as np

from facetag.vision.runtime import Network

#: The package's defaults: pyramid step, smallest PNet input, per-stage score
#: thresholds and NMS overlaps.
SCALE_FACTOR = 0.709
PNET_INPUT = 12
PNET_THRESHOLD, PNET_LEVEL_NMS, PNET_NMS = 0.6, 0.5, 0.7
RNET_THRESHOLD, RNET_NMS = 0.7, 0.7
ONET_THRESHOLD, ONET_NMS = 0.8, 0.7

#: Boxes compared at a time by NMS, and crops per RNet/ONet call.
NMS_BLOCK = 512


def pyramid_scales(height, width, min_face_size):
    """The package's scale pyramid (``build_scale_pyramid``): PNet sees a
    ``min_face_size`` face as 12 px at the first level, then 0.709x smaller
    levels down to a 12 px photo."""
    if min(height, width) < PNET_INPUT:  # no level at all (and log(0) for a 0 px side)
        return np.zeros(0)
    count = round(-((np.log(min(height, width) / PNET_INPUT) / np.log(SCALE_FACTOR)) + 1))
    return (PNET_INPUT / min_face_size) * SCALE_FACTOR ** np.arange(max(count, 0))


def suppress(boxes, threshold, method="union"):
    """The package's NMS (``mtcnn.utils.bboxes.smart_nms_from_bboxes``) on
    score-sorted boxes: a box is dropped when any higher-scored box (kept or
    not) overlaps it by more than ``threshold``.

    ``boxes``: (N, 4 + k) rows whose first four columns are (x1, y1, x2, y2);
    compared ``NMS_BLOCK`` at a time, so memory stays linear in N.
    """
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1) * (y2 - y1)
    dropped = np.zeros(len(boxes), bool)
    for start in range(0, len(boxes), NMS_BLOCK):
        block = slice(start, start + NMS_BLOCK)
        width = np.maximum(np.minimum(x2[:, None], x2[None, block]) - np.maximum(x1[:, None], x1[None, block]), 0)
        height = np.maximum(np.minimum(y2[:, None], y2[None, block]) - np.maximum(y1[:, None], y1[None, block]), 0)
        inter = width * height
        if method == "union":
            overlap = inter / (area[:, None] + area[None, block] - inter)
        else:
            overlap = inter / np.minimum(area[:, None], area[None, block])
        earlier = np.arange(len(boxes))[:, None] < np.arange(start, start + overlap.shape[1])[None, :]
        dropped[block] = ((overlap > threshold) & earlier).any(axis=0)
    return boxes[~dropped]


def area_resize(image, height, width):
    """``image`` (float32 or uint8, H x W x 3) averaged down to ``height`` x ``width`` (float32)."""
    import cv2

    return cv2.resize(np.asarray(image, np.float32), (width, height), interpolation=cv2.INTER_AREA)


def crop_and_resize(image, boxes, side):
    """``tf.image.crop_and_resize`` of (H, W, 3) ``image``: a ``side`` x ``side`` bilinear crop per box
    (x1, y1, x2, y2 in pixels, normalised by the image size as the package does); samples outside the
    image are 0."""
    height, width = image.shape[:2]
    steps = np.arange(side) / (side - 1)

    def samples(low, high, size):
        at = (low / size * (size - 1))[:, None] + ((high - low) / size * (size - 1))[:, None] * steps[None, :]
        inside = (at >= 0) & (at <= size - 1)
        lower = np.clip(np.floor(at), 0, size - 1).astype(np.intp)
        upper = np.clip(np.ceil(at), 0, size - 1).astype(np.intp)
        return lower, upper, (at - np.floor(at)).astype(np.float32), inside

    top, bottom, y_weight, y_inside = samples(boxes[:, 1], boxes[:, 3], height)
    left, right, x_weight, x_inside = samples(boxes[:, 0], boxes[:, 2], width)
    y_weight, x_weight = y_weight[:, :, None, None], x_weight[:, None, :, None]

    pixels = image.reshape(-1, image.shape[2])

    def row(rows):  # (N, side, side, 3): the crop's samples along rows ``rows``, interpolated across columns
        first = rows[:, :, None] * width
        return (pixels.take(first + left[:, None, :], axis=0) * (1 - x_weight)
                + pixels.take(first + right[:, None, :], axis=0) * x_weight)

    crops = row(top) * (1 - y_weight) + row(bottom) * y_weight
    return crops * (y_inside[:, :, None, None] & x_inside[:, None, :, None])


def _by_score(rows):
    return rows[np.argsort(-rows[:, 4], kind="stable")]


def _square(boxes):
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    side = np.maximum(x2 - x1, y2 - y1)
    left, top = x1 + (x2 - x1) * 0.5 - side * 0.5, y1 + (y2 - y1) * 0.5 - side * 0.5
    return np.concatenate([np.stack([left, top, left + side, top + side], axis=1), boxes[:, 4:]], axis=1)


def _refine(boxes, offsets):
    size = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1] * 2, axis=1)
    return boxes[:, :4] + offsets * size


class Cascade:
    """``cascade(photo, size, scales) -> (boxes, scores, landmarks)``.

    ``photo``: (H, W, 3) uint8 RGB; ``size``: (height, width) to search it at;
    ``scales``: :func:`pyramid_scales` of that size. Returns float64 arrays in
    pixels of the searched size: boxes (N, 4) as (left, top, right, bottom),
    scores (N,), landmarks (N, 10) as the package orders them (five x, then
    five y), highest score first. Nothing is clipped or rounded.
    """

    def __init__(self):
        # One thread per network: one cascade per detection thread searches photos side by side, which on
        # two cores finds 1.4x as many 250x250 photos a second as one cascade on two threads (112 against 78).
        # PNet sees a dozen level sizes per photo size (a 1280 x 960 photo's hold 2.7M numbers together);
        # RNet and ONet a batch size per photo.
        self.pnet = Network("pnet", shapes=32, threads=1, max_inputs=4_000_000)
        self.rnet, self.onet = Network("rnet", shapes=4, threads=1), Network("onet", shapes=4, threads=1)

    def __call__(self, photo, size, scales):
        height, width = size
        image = photo if photo.shape[:2] == (height, width) else area_resize(photo, height, width)
        image = (np.asarray(image, np.float32) - 127.5) / 128.0

        proposals = [self._level_proposals(image, scale) for scale in scales]
        proposals = np.concatenate(proposals) if proposals else np.zeros((0, 5))
        proposals = _square(suppress(_by_score(proposals), PNET_NMS))

        scored = self._refined(self.rnet, image, proposals, 24)
        candidates = _square(suppress(_by_score(scored[scored[:, 4] > RNET_THRESHOLD]), RNET_NMS))

        outputs = self._run_on_crops(self.onet, image, candidates, 48)
        offsets, points, probabilities = outputs[:, :4], outputs[:, 4:14], outputs[:, 14:]
        box_width = candidates[:, 2:3] - candidates[:, 0:1] + 1
        box_height = candidates[:, 3:4] - candidates[:, 1:2] + 1
        points = np.concatenate([box_width * points[:, :5] + candidates[:, 0:1] - 1,
                                 box_height * points[:, 5:] + candidates[:, 1:2] - 1], axis=1)
        faces = np.concatenate([_refine(candidates, offsets), probabilities[:, 1:], points], axis=1)
        faces = suppress(_by_score(faces[faces[:, 4] > ONET_THRESHOLD]), ONET_NMS, method="min")
        return faces[:, :4], faces[:, 4], faces[:, 5:]

    def _level_proposals(self, image, scale):
        height, width = (np.array(image.shape[:2], np.float64) * scale).astype(np.int32)
        out = self.pnet(area_resize(image, height, width)[None])[0]
        logits = out[..., 4:].astype(np.float32)  # the face probability as Keras' softmax computes it
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        score = (exp[..., 1] / exp.sum(axis=-1)).astype(np.float64)
        rows, columns = np.nonzero(score > PNET_THRESHOLD)  # each a 12x12 window, stride 2
        offset = out[rows, columns, :4] * 11.0
        corner_x, corner_y = columns * 2.0, rows * 2.0
        boxes = np.stack([corner_x + 1 + offset[:, 0], corner_y + 1 + offset[:, 1],
                          corner_x + 12 + offset[:, 2], corner_y + 12 + offset[:, 3]], axis=1) / scale
        return suppress(_by_score(np.concatenate([boxes, score[rows, columns, None]], axis=1)), PNET_LEVEL_NMS)

    def _refined(self, network, image, boxes, side):
        outputs = self._run_on_crops(network, image, boxes, side)
        return np.concatenate([_refine(boxes, outputs[:, :4]), outputs[:, 5:6]], axis=1)

    @staticmethod
    def _run_on_crops(network, image, boxes, side):
        """``network``'s output rows for each box's ``side`` x ``side`` crop, NMS_BLOCK crops per call."""
        if len(boxes) == 0:
            return np.zeros((0, {24: 6, 48: 16}[side]))
        return np.concatenate([network(crop_and_resize(image, boxes[start:start + NMS_BLOCK], side))
                               for start in range(0, len(boxes), NMS_BLOCK)])
