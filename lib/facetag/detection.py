"""Find faces and their five landmarks with MTCNN (the ``mtcnn`` package's weights).

Boxes everywhere in facetag are ``(left, top, right, bottom)`` in pixels of the
decoded image; landmarks are five ``(x, y)`` points in the order of
:data:`LANDMARK_NAMES`.
"""

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

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


def compiled_mtcnn():
    """The ``mtcnn`` package's detector with its networks compiled by tf.function.

    The package calls its Keras networks eagerly, and resizes the photo
    eagerly for each pyramid level, which costs more than the arithmetic on
    small photos (on a 512x512 photo the eager resizes alone took a third of
    the time). Here each pyramid level's resize and PNet run as one compiled
    function, and RNet and ONet are compiled for any number of candidates;
    each compiles once per process. The package's weights and its pre- and
    post-processing are kept as they are.
    """
    import tensorflow as tf
    from mtcnn import MTCNN
    from mtcnn.stages import StageONet, StageRNet

    rnet, onet = StageRNet(), StageONet()
    # StageBase keeps its network in _model and calls it as a function; there is no public hook.
    rnet._model = tf.function(rnet._model, input_signature=[tf.TensorSpec([None, 24, 24, 3], tf.float32)])
    onet._model = tf.function(onet._model, input_signature=[tf.TensorSpec([None, 48, 48, 3], tf.float32)])
    return MTCNN(stages=[_compiled_pnet_stage(), rnet, onet])


def _compiled_pnet_stage():
    import tensorflow as tf
    from mtcnn.stages import StagePNet
    from mtcnn.utils.bboxes import generate_bounding_box, resize_to_square, smart_nms_from_bboxes, upscale_bboxes
    from mtcnn.utils.images import build_scale_pyramid

    class CompiledPNet(StagePNet):
        """StagePNet.__call__ with each level's resize and network fused into one compiled call."""

        def __init__(self):
            super().__init__()
            network = self._model

            @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32),
                                          tf.TensorSpec([2], tf.int32)])
            def level(images, size):
                return network(tf.image.resize(images, size, method=tf.image.ResizeMethod.AREA))

            self._level = level

        def __call__(self, images_normalized, images_oshapes, min_face_size=20, min_size=12, scale_factor=0.709,
                     threshold_pnet=0.6, nms_pnet1=0.5, nms_pnet2=0.7, **kwargs):
            # As the package's StagePNet: the largest image's pyramid, sizes truncated like its scale_images.
            scales = max((build_scale_pyramid(shape[1], shape[0], min_face_size=min_face_size,
                                              scale_factor=scale_factor) for shape in images_oshapes), key=len)
            shape = np.asarray(images_normalized.shape[-3:-1])
            batch_size = images_normalized.shape[0]
            images = tf.convert_to_tensor(images_normalized, tf.float32)  # once, not once per level
            levels = [self._level(images, (shape * scale).astype(np.int32)) for scale in scales]
            proposals = [generate_bounding_box(offsets, scores, threshold_pnet) for offsets, scores in levels]
            upscaled = [upscale_bboxes(b, np.asarray([scale] * batch_size)) for b, scale in zip(proposals, scales)]
            per_level = [smart_nms_from_bboxes(b, threshold=nms_pnet1, method="union", initial_sort=False)
                         for b in upscaled]
            bboxes = np.concatenate(per_level, axis=0) if per_level else np.empty((0, 6))
            bboxes = smart_nms_from_bboxes(bboxes, threshold=nms_pnet2, method="union", initial_sort=True)
            return resize_to_square(bboxes)

    return CompiledPNet()


@dataclass(frozen=True)
class Detection:
    box: tuple  # (left, top, right, bottom), int pixels
    score: float
    landmarks: tuple  # five (x, y) float pairs, LANDMARK_NAMES order


class FaceDetector:
    """MTCNN face detector. Settings are stored here; the network loads on first use."""

    def __init__(self, min_score=DEFAULT_MIN_SCORE, min_face_size=DEFAULT_MIN_FACE_SIZE):
        self.min_score = min_score
        self.min_face_size = min_face_size
        self._mtcnn = None

    def _network(self):
        with _lock:
            if self._mtcnn is None:
                self._mtcnn = compiled_mtcnn()
            return self._mtcnn

    def detect(self, image):
        """Return the faces in an (H, W, 3) RGB uint8 image, highest score first.

        Photos whose longer side exceeds DETECTION_MAX_SIDE are searched at that
        size (boxes and landmarks are mapped back to the full photo, from which
        faces are then cropped): a 12-megapixel photo's pyramid would otherwise
        start at 20-pixel faces, a thousandth of its width.
        """
        scale = min(1.0, DETECTION_MAX_SIDE / max(image.shape[:2]))
        searched = image if scale == 1.0 else np.asarray(
            Image.fromarray(image).resize((round(image.shape[1] * scale), round(image.shape[0] * scale)),
                                          Image.BILINEAR))
        found = self._network().detect_faces(
            np.ascontiguousarray(searched), box_format="xyxy", min_face_size=self.min_face_size
        )
        detections = [
            Detection(
                box=tuple(int(round(float(v) / scale)) for v in face["box"]),
                score=float(face["confidence"]),
                landmarks=tuple(
                    (float(face["keypoints"][name][0]) / scale, float(face["keypoints"][name][1]) / scale)
                    for name in LANDMARK_NAMES
                ),
            )
            for face in found
            if float(face["confidence"]) >= self.min_score
        ]
        return sorted(detections, key=lambda d: -d.score)


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
