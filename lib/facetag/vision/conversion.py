"""The networks converted to LiteRT flatbuffers with TensorFlow's converter: the one place they need TensorFlow.

facetag.vision.runtime calls :func:`convert` the first time a network is needed on a machine (``make
setup`` does it for all, about a minute) and keeps the result; the float32 conversions change no
weight. Each network is converted with one output tensor (its outputs concatenated), so nothing
depends on the order in which the converter lists outputs.

FaceNet's frozen graph was exported for a batch of one: its input placeholder and two reshape
constants say ``1``. :func:`batch_free_graph` rewrites those three nodes so any batch size runs
through one call. FaceNet is also converted to int8 (``facenet-int8``, the default encoder, see
facetag.vision.backbone.PRECISIONS): TensorFlow's dynamic-range quantisation, then the layers of
:data:`FACENET_FLOAT_LAYERS` given back their float32 weights. dlib's ResNet is converted to full-integer
int8 (``dlib-resnet-int8``), calibrated on face chips (facetag.vision.calibration).
"""

import functools
import hashlib
import os

import numpy as np

from facetag.io.checksums import file_sha256
from facetag.vision.calibration import calibration_chips, calibration_key
from facetag.vision.dlib_weights import read_network
from facetag.vision.weight_files import EMBEDDING_SIZE, dlib_resnet_path, graph_path, mtcnn_version

#: Bumped when the conversion below changes, so that cached files are converted again.
CONVERSION_VERSION = 2

NETWORKS = ("pnet", "rnet", "onet", "facenet", "facenet-int8", "dlib-resnet", "dlib-resnet-int8")

#: FaceNet layers the int8 network keeps in float32. Kept in int8, Conv2d_2a_3x3 alone gives a third of
#: the int8 network's distance from the float32 encodings (mean over 400 faces of people in no measured
#: pair: 0.0174, and 0.0121 with this layer in float32; no other single layer brings it below 0.0166); in
#: float32 it costs about a seventh of the int8 speed (157 against 184 encodings/s at batch 8 on two
#: cores). Chosen with bench/encoder_variants.py's layer sweep (weights/README.md, "Encoder precision").
FACENET_FLOAT_LAYERS = ("InceptionResnetV1/Conv2d_2a_3x3/Conv2D",)

_INPUT = "input:0"
_OUTPUT = "embeddings:0"
_BATCH_ONE_RESHAPES = {
    # node name -> its constant with the batch dimension made free
    "InceptionResnetV1/Logits/Flatten/flatten/Reshape/shape/_1__cf__3": [-1, 1792],
    "InceptionResnetV1/Bottleneck/BatchNorm/Shape/_0__cf__2": [-1, EMBEDDING_SIZE],
}


def source_key(network):
    """What the flatbuffer is made from: the weights' package (or graph file) and the conversion."""
    if network.startswith("facenet"):
        source = file_sha256(graph_path()) + ("|" + ",".join(FACENET_FLOAT_LAYERS) if network == "facenet-int8" else "")
    elif network == "dlib-resnet":
        source = file_sha256(dlib_resnet_path())
    elif network == "dlib-resnet-int8":
        source = file_sha256(dlib_resnet_path()) + "|calibration-" + calibration_key()
    else:
        source = "mtcnn-" + mtcnn_version()
    return hashlib.sha256(f"{source}|{CONVERSION_VERSION}".encode()).hexdigest()[:12]


def convert(network):
    """The flatbuffer (bytes) of ``network``, one of :data:`NETWORKS`."""
    # Before TensorFlow loads: its C++ notices (oneDNN banners) are not for the user; 0 shows them again.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return _CONVERTERS[network]()


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
    (N, 160, 160, 3) batch (what :func:`convert` converts); ``wrapped`` owns its variables."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    with open(graph_path(), "rb") as f:
        graph_def.ParseFromString(f.read())
    batch_free_graph(graph_def)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    return wrapped, wrapped.prune(wrapped.graph.get_tensor_by_name(_INPUT), wrapped.graph.get_tensor_by_name(_OUTPUT))


def _convert(function, calibration=None):
    """Flatbuffer of a ``tf.function`` with one input signature; with ``calibration`` (a batch of typical
    inputs), full-integer int8 (float32 in and out) with activation ranges measured on them."""
    import tensorflow as tf

    owner = tf.Module()
    owner.function = function
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], owner)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample[None]] for sample in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _convert_facenet():
    import tensorflow as tf

    wrapped, encode = graph_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([encode], wrapped).convert()


def _convert_facenet_int8():
    """FaceNet with int8 weights and inputs quantised per face as it runs (TensorFlow's dynamic-range
    quantisation), but for FACENET_FLOAT_LAYERS, kept in float32."""
    import tensorflow as tf

    wrapped, encode = graph_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([encode], wrapped)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return with_float_layers(converter.convert(), _convert_facenet(), FACENET_FLOAT_LAYERS)


def with_float_layers(quantised, original, float_layers):
    """The flatbuffer ``quantised`` (bytes: a dynamic-range int8 conversion) with the weights named
    ``float_layers`` put back as they are in ``original`` (the float32 conversion of the same graph).

    The converter cannot leave chosen layers out of dynamic-range quantisation (its denylists are for
    full-integer models), so the flatbuffer is edited: a layer whose weights are float32 runs in float32,
    and both conversions name their tensors after the graph's nodes.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(quantised)
    source = flatbuffer_utils.convert_bytearray_to_object(original)
    float_weights = {t.name.decode(): t for t in source.subgraphs[0].tensors}
    restored = set()
    for tensor in model.subgraphs[0].tensors:
        name = tensor.name.decode()
        if name in float_layers:
            weights = float_weights[name]
            tensor.type, tensor.quantization = weights.type, weights.quantization
            model.buffers[tensor.buffer].data = source.buffers[weights.buffer].data
            restored.add(name)
    if restored != set(float_layers):
        raise RuntimeError(f"the int8 conversion has no weights named {sorted(set(float_layers) - restored)}")
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@functools.cache
def _mtcnn_networks():
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    networks = []
    for network, weights in ((PNet(), "pnet.lz4"), (RNet(), "rnet.lz4"), (ONet(), "onet.lz4")):
        network.build()
        network.set_weights(load_weights(weights))
        networks.append(network)
    return networks


def _convert_pnet():
    """PNet as plain ops on the Keras model's weights, its two 1x1 heads run as one convolution.
    Output (1, h, w, 6) per 12x12 window: four box offsets and the two class logits (the cascade takes
    their softmax in float32, as Keras does: the converter's sigmoid rounds near-certain scores to
    1.0, which changes the order in which NMS sees them)."""
    import tensorflow as tf

    pnet = _mtcnn_networks()[0]
    (k1, b1, a1, k2, b2, a2, k3, b3, a3, box_kernel, box_bias, class_kernel, class_bias) = (
        weight.numpy() for weight in pnet.weights)
    head = np.concatenate([box_kernel, class_kernel], axis=-1)
    head_bias = np.concatenate([box_bias, class_bias])

    def conv_prelu(x, kernel, bias, alpha):  # as Keras' PReLU computes it
        x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "VALID"), bias)
        return tf.nn.relu(x) - alpha * tf.nn.relu(-x)

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    def forward(images):
        x = tf.nn.max_pool2d(conv_prelu(images, k1, b1, a1), 2, 2, "SAME")
        x = conv_prelu(conv_prelu(x, k2, b2, a2), k3, b3, a3)
        return tf.nn.bias_add(tf.nn.conv2d(x, head, 1, "VALID"), head_bias)

    return _convert(forward)


def _convert_refiner(index, side):
    """RNet (index 1, 24x24 crops) or ONet (2, 48x48): all outputs side by side, one row per crop."""
    import tensorflow as tf

    network = _mtcnn_networks()[index]

    @tf.function(input_signature=[tf.TensorSpec([None, side, side, 3], tf.float32)])
    def forward(crops):
        return tf.concat(network(crops), axis=1)

    return _convert(forward)


def _convert_dlib_resnet(calibration=None):
    """dlib's ResNet (facetag.vision.dlib_weights) as TensorFlow ops on its parsed weights: uint8-range float32
    chips (N, 150, 150, 3) in, dlib's 128 numbers out (not unit length, as dlib gives them). With
    ``calibration`` chips, in full-integer int8 (XNNPACK's QS8 kernels; facetag.vision.calibration)."""
    import tensorflow as tf

    network = read_network(dlib_resnet_path())

    def conv(x, layer):
        if layer.padding:
            x = tf.pad(x, [[0, 0], [layer.padding] * 2, [layer.padding] * 2, [0, 0]])
        x = tf.nn.bias_add(tf.nn.conv2d(x, layer.kernel, layer.stride, "VALID"), layer.bias)
        return x * layer.scale + layer.shift

    def padded_to(x, rows, channels):
        # dlib's add_prev adds tensors of different sizes where they overlap, from the top left: zeros elsewhere
        return tf.pad(x, [[0, 0], [0, rows - x.shape[1]], [0, rows - x.shape[2]], [0, channels - x.shape[3]]])

    size = network.chip_size

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    def forward(chips):
        x = tf.nn.relu(conv((chips - network.mean_rgb) / 256.0, network.stem))
        x = tf.nn.max_pool2d(x, network.pool[0], network.pool[1], "VALID")
        for first, second in network.blocks:
            out = conv(tf.nn.relu(conv(x, first)), second)
            if first.stride == 1:
                x = tf.nn.relu(x + out)
            else:  # a down block: its shortcut is a 2x2 average pool of its input
                shortcut = tf.nn.avg_pool2d(x, 2, 2, "VALID")
                rows, channels = max(shortcut.shape[1], out.shape[1]), max(shortcut.shape[3], out.shape[3])
                x = tf.nn.relu(padded_to(shortcut, rows, channels) + padded_to(out, rows, channels))
        return tf.reduce_mean(x, axis=[1, 2]) @ network.projection

    return _convert(forward, calibration)


def _convert_dlib_resnet_int8():
    return _convert_dlib_resnet(calibration_chips())


_CONVERTERS = {
    "pnet": _convert_pnet,
    "rnet": lambda: _convert_refiner(1, 24),
    "onet": lambda: _convert_refiner(2, 48),
    "facenet": _convert_facenet,
    "facenet-int8": _convert_facenet_int8,
    "dlib-resnet": _convert_dlib_resnet,
    "dlib-resnet-int8": _convert_dlib_resnet_int8,
}
