"""dlib's ResNet face encoder (facetag.vision.dlib_weights) on LiteRT, in full-integer int8 or float32.

int8 (the default) is calibrated on face chips (facetag.vision.calibration) and runs on XNNPACK's QS8
kernels: on two AVX-512 VNNI cores 0.63 ms a chip against float32's 1.37 (batches of 8; bench/dlib_int8.py),
with the same accuracy within 0.1 point (weights/README.md, "dlib's ResNet in int8"). TensorFlow's dynamic-range int8
conversion, which quantises weights only, ran it slower than float32 (184 against 210 chips a second on AVX2).
"""

import threading

import numpy as np

from facetag.io.checksums import file_sha256
from facetag.vision.alignment import CHIP_SIZE, to_channels_last
from facetag.vision.calibration import calibration_key
from facetag.vision.runtime import Network
from facetag.vision.weight_files import dlib_resnet_path

ENCODING_SIZE = 128


PRECISIONS = {"int8": "dlib-resnet-int8", "fp32": "dlib-resnet"}  # precision -> facetag.vision.runtime network
DEFAULT_PRECISION = "int8"


def dlib_encoder_id(precision=DEFAULT_PRECISION):
    """What its encodings are made by, for model ids: ``dlib-``, the weight file's SHA-256 (12 digits) and for
    the int8 network ``-int8-`` and its calibration's key (6 digits; the float32 one keeps the id stores were
    made with before int8)."""
    weights = "dlib-" + file_sha256(dlib_resnet_path())[:12]
    return weights + f"-int8-{calibration_key()[:6]}" if precision == "int8" else weights


class DlibEncoder:
    """Aligned face chips (facetag.vision.alignment.align_face), uint8 (N, 150, 150, 3) -> float32 (N, 128),
    each row L2-normalised (dlib's own encodings are about 1.4 long; its 0.6 threshold is for those)."""

    def __init__(self, precision=DEFAULT_PRECISION, batch_size=8):
        self.precision = precision
        self.batch_size = batch_size
        self.encoder_id = dlib_encoder_id(precision)
        self._network = Network(PRECISIONS[precision])

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


_shared = {}
_lock = threading.Lock()


def load_dlib_encoder(precision=DEFAULT_PRECISION):
    """The process-wide encoder of that precision, loaded on first call (thread-safe)."""
    with _lock:
        if precision not in _shared:
            _shared[precision] = DlibEncoder(precision)
        return _shared[precision]
