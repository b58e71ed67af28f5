"""dlib's ResNet face encoder (facetag.vision.dlib_weights) on LiteRT, in float32.

About 210 chips a second on two cores (batches of 8), against FaceNet int8's 157 crops. TensorFlow's
dynamic-range int8 conversion ran it slower (184 a second) on the same machine, so it stays in float32:
the network is 22 MB and a fifth of FaceNet's arithmetic, too small for int8 to pay (weights/README.md).
"""

import threading

import numpy as np

from facetag.io.checksums import file_sha256
from facetag.vision.alignment import CHIP_SIZE, to_channels_last
from facetag.vision.runtime import Network
from facetag.vision.weight_files import dlib_resnet_path

ENCODING_SIZE = 128


def dlib_encoder_id():
    """What its encodings are made by, for model ids: ``dlib-`` and the weight file's SHA-256 (12 digits)."""
    return "dlib-" + file_sha256(dlib_resnet_path())[:12]


class DlibEncoder:
    """Aligned face chips (facetag.vision.alignment.align_face), uint8 (N, 150, 150, 3) -> float32 (N, 128),
    each row L2-normalised (dlib's own encodings are about 1.4 long; its 0.6 threshold is for those)."""

    def __init__(self, batch_size=8):
        self.batch_size = batch_size
        self.encoder_id = dlib_encoder_id()
        self._network = Network("dlib-resnet")

    def encode(self, chips):
        batch = to_channels_last(chips)
        if batch.shape[1:3] != (CHIP_SIZE, CHIP_SIZE):
            raise ValueError(f"face chips must be {CHIP_SIZE}x{CHIP_SIZE}, got {batch.shape[1:3]}")
        if len(batch) == 0:
            return np.zeros((0, ENCODING_SIZE), np.float32)
        batch = batch.astype(np.float32)
        out = np.concatenate([self._network(batch[i : i + self.batch_size])
                              for i in range(0, len(batch), self.batch_size)])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


_shared = []
_lock = threading.Lock()


def load_dlib_encoder():
    """The process-wide encoder, loaded on first call (thread-safe)."""
    with _lock:
        if not _shared:
            _shared.append(DlibEncoder())
        return _shared[0]
