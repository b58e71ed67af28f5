"""dlib's ResNet face encoder read from its own weight file, without dlib.

``dlib_face_recognition_resnet_model_v1.dat`` (PyPI package ``face_recognition_models``, public domain;
facetag.vision.weight_files finds it) is dlib's ``anet_type`` serialised by ``dlib::serialize``: a ResNet of
29 convolutions on a 150x150 aligned face chip (facetag.vision.alignment.align_face), 128 numbers out, trained
by Davis King on about 3 million faces of 7,485 people, none of them in LFW. :func:`read_network` parses the
file into NumPy arrays; facetag.vision.conversion builds the same network for LiteRT from them. dlib's own
reader would need dlib, a C++ build facetag does not install. tests/test_dlib_encoder.py checks the result
against dlib's own encoder (``dlib-bin``, a test dependency).

The format (dlib/serialize.h, dlib/dnn/*.h): an integer is a control byte (its low nibble the number of
little-endian bytes that follow, 0x80 its sign) then those bytes; a string is its length then its
bytes; a float is two integers, mantissa and binary exponent; a tensor is version 2, four dimensions
and raw little-endian float32. The network is written from its input up, each layer as a version
string and its details, so the layers are found by their version strings in file order.
"""

import re
from dataclasses import dataclass

import numpy as np

#: The layers of dlib's anet_type as their version strings name them in the file.
_LAYER = re.compile(rb"\x01[\x04-\x15](loss_metric_2|input_rgb_image_sized|con_4|affine_|max_pool_2|avg_pool_2|fc_2)")


@dataclass
class Conv:
    kernel: np.ndarray  # (height, width, in, out), TensorFlow's layout
    bias: np.ndarray
    stride: int
    padding: int  # zeros on each side
    scale: np.ndarray  # the affine layer after it (batch norm, frozen): x * scale + shift
    shift: np.ndarray


@dataclass
class DlibNetwork:
    """The parsed network: ``mean_rgb`` is subtracted from the 0-255 chip, which is then divided by 256;
    ``stem`` is a 7x7 convolution then a 3x3 max pool (``pool``: size, stride); each of ``blocks`` is a
    residual block of two convolutions (the first of stride 2 in a down block, whose shortcut is a 2x2 average
    pool); the output is the blocks' global average times ``projection`` (256 x 128, no bias)."""

    mean_rgb: np.ndarray
    chip_size: int
    stem: Conv
    pool: tuple
    blocks: list  # of (Conv, Conv)
    projection: np.ndarray


class _Reader:
    def __init__(self, data, position):
        self.data, self.position = data, position

    def integer(self):
        control = self.data[self.position]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.position + 1 : self.position + 1 + size], "little")
        self.position += 1 + size
        return -value if control & 0x80 else value

    def real(self):
        mantissa = self.integer()
        return mantissa * 2.0 ** self.integer()

    def string(self):
        size = self.integer()
        text = self.data[self.position : self.position + size].decode("ascii")
        self.position += size
        return text

    def tensor(self):
        if self.integer() != 2:
            raise ValueError("unknown tensor version")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.position).copy()
        self.position += 4 * count
        return values

    def alias_shape(self):
        if self.integer() != 1:
            raise ValueError("unknown alias_tensor version")
        return [self.integer() for _ in range(4)]


def _layers(data):
    """``(kind, details)`` of each layer, input first."""
    for match in _LAYER.finditer(data):
        reader = _Reader(data, match.start())
        kind = reader.string()
        if kind == "con_4":
            params = reader.tensor()
            filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(7))
            channels = reader.alias_shape()[1]
            weights = filters * channels * rows * cols
            kernel = params[:weights].reshape(filters, channels, rows, cols).transpose(2, 3, 1, 0)
            if stride_y != stride_x or pad_y != pad_x:
                raise ValueError("dlib network with unequal strides or paddings")
            yield "conv", (kernel, params[weights:], stride_y, pad_y)
        elif kind == "affine_":
            params = reader.tensor()
            channels = int(np.prod(reader.alias_shape()))
            yield "affine", (params[:channels], params[channels:])
        elif kind in ("max_pool_2", "avg_pool_2"):
            yield kind[:-2], tuple(reader.integer() for _ in range(6))  # rows, cols, strides, paddings
        elif kind == "fc_2":
            outputs, inputs = reader.integer(), reader.integer()
            yield "fc", reader.tensor().reshape(inputs, outputs)
        elif kind == "input_rgb_image_sized":
            yield "input", (np.array([reader.real() for _ in range(3)], np.float32), reader.integer())
        # loss_metric_2 (the training loss) has nothing the encoder needs


def read_network(path):
    """The :class:`DlibNetwork` in dlib's weight file ``path``; ValueError when it is not the expected ResNet."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        layers = list(_layers(data))
    except (ValueError, IndexError) as e:
        raise ValueError(f"{path} is not dlib's face recognition ResNet: {e}") from None
    kinds = "".join({"conv": "c", "affine": "a", "max_pool": "m", "avg_pool": "p", "fc": "f", "input": "i"}[k]
                    for k, _ in layers)
    # input, stem conv + affine + max pool, 14 blocks of two (conv, affine) (+ the shortcut's pool in a down
    # block), the global average pool (an avg_pool of size 0), the projection
    if not re.fullmatch(r"icam(?:caca(?:p)?){14}pf", kinds):
        raise ValueError(f"{path} is not dlib's face recognition ResNet (layers {kinds})")
    convs = [Conv(*conv, *affine) for (_, conv), (_, affine) in
             zip((x for x in layers if x[0] == "conv"), (x for x in layers if x[0] == "affine"))]
    pool = layers[3][1]
    mean_rgb, chip_size = layers[0][1]
    return DlibNetwork(mean_rgb=mean_rgb, chip_size=chip_size, stem=convs[0], pool=(pool[0], pool[2]),
                       blocks=[(convs[i], convs[i + 1]) for i in range(1, len(convs), 2)], projection=layers[-1][1])
