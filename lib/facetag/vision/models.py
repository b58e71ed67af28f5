"""Named face-encoding models and the identifier every stored encoding carries.

``facetag-256`` (the default) joins two encoders trained on different faces, which err on different
pairs: facetag-128's encoding and dlib's ResNet's (facetag.vision.dlib_encoder, on the face chip aligned by
its landmarks), side by side; its distances combine both encoders'. It is the most accurate model on every
LFW set and the one that meets the clustering goal (weights/README.md). ``facetag-duo`` maps that joined
encoding to 128 numbers with a head trained with the triplet loss (and a term keeping facetag-256's
distances): within 0.3 point of facetag-256 on every pair set, but short of it (weights/README.md,
"facetag-duo"), so not the default.
``facetag-128`` is the pretrained FaceNet backbone followed by a 512 -> 128 projection this project trained
with the triplet loss (the default until 2026-12-07); ``facenet-512`` is the backbone alone. The backbone
runs in int8 (facetag.vision.backbone.DEFAULT_PRECISION) and so does dlib's network
(facetag.vision.dlib_encoder.DEFAULT_PRECISION). Earlier encodings go on with models of their own:
``facetag-128-fp32`` and ``facenet-512-fp32`` run the backbone in float32, as facetag did before
2026-12-04; ``facetag-256-v1`` runs dlib's network in float32, as facetag-256 did before 2026-12-07. A
store keeps the model it was made with (beam_jobs.tag) until it is re-encoded (beam_jobs.reencode).

A model id is ``name:backbone:head-sha:preprocessing``, ``backbone`` being the
graph's SHA-256 with ``-int8`` for the int8 network (facetag.vision.backbone.backbone_id):
the ``-fp32`` models keep the ids of the float32 encoder. A joined model's backbone part also
names dlib's weights (with ``-int8-`` and its calibration's key for its int8 network), its preprocessing the chip's (``crop-v2+chip-v1``),
and facetag-duo's head part both heads. Encodings and indexes store it, and facetag refuses to compare
encodings whose ids differ.
"""

import functools
import hashlib
import io
import threading
from dataclasses import dataclass
from importlib import resources

import numpy as np

from facetag.errors import FaceTagError, ModelMismatchError
from facetag.vision.alignment import CHIP_VERSION, PREPROCESSING_VERSION
from facetag.vision.backbone import backbone_id, load_backbone
from facetag.vision.dlib_encoder import ENCODING_SIZE as DLIB_ENCODING_SIZE
from facetag.vision.dlib_encoder import dlib_encoder_id, load_dlib_encoder
from facetag.vision.weight_files import EMBEDDING_SIZE

DEFAULT_MODEL = "facetag-256"
#: --model of a run on an archive store (facetag tag): its default is the store's model.
STORE_MODEL_HELP = (f"encoding model (default: the store's, so that a scheduled run keeps working when facetag's "
                    f"default changes; {DEFAULT_MODEL} for a new store)")
METRIC = "euclidean"  # between L2-normalised encodings

# Distance at or below which two faces are the same person: the best single
# threshold on all 3,000 lfw_dev pairs, as printed by `facetag evaluate`
# (`make lfw-eval`), re-derived for crop-v2 (1.110 and 1.154, as with crop-v1);
# weights/README.md has the measurement. For a stricter
# operating point, `facetag calibrate --far 1e-3` gives 0.97 (512) and 1.08 (128).
# The int8 backbone moves encodings by about 0.01 (weights/README.md): the same thresholds hold for it.
THRESHOLDS = {
    "facenet-512": 1.11,
    "facetag-128": 1.15,
    "facetag-256": 0.57,  # 0.572
    "facetag-duo": 0.93,  # 0.928
}

# 1:K identification needs a stricter threshold than 1:1 verification: a
# stranger is compared with every gallery face, and one chance match makes him
# someone. These come from the open-set sweep of `make lfw-identify`
# (291 people enrolled with 2 photos each, 300 strangers; README "Accuracy").
IDENTIFY_THRESHOLDS = {
    "facenet-512": 0.90,  # 90.5% of the known identified, 94.0% of strangers rejected
    "facetag-128": 0.95,  # 93.0% identified, 95.3% rejected
    "facetag-256": 0.48,  # 95.0% identified, 97.0% rejected (facetag-256-v1: 95.0% and 96.3%)
    "facetag-duo": 0.77,  # 95.1% identified, 96.3% rejected (0.76: 94.3% and 97.0%)
}

# Distance at or below which `facetag cluster` links two faces (average linkage, facetag.identity.clustering):
# chosen by bench/cluster.py on lfw_dev people no head was trained on (bench/RESULTS.md).
CLUSTER_THRESHOLDS = {
    "facenet-512": 0.975,  # facetag-128's: clustering had one threshold for every model before issue 23
    "facetag-128": 0.975,
    "facetag-256": 0.47,  # facetag-128's ratio to its pair threshold (0.82) times facetag-256's (0.572)
    "facetag-duo": 0.77,  # facetag-256's rule: 0.82 times its best pair threshold on selection people (0.944)
}

_HEADS = {"facetag-128": "facetag-128.npz", "facetag-256": "facetag-128.npz", "facetag-duo": "facetag-128.npz"}
#: Models whose encodings join dlib's ResNet's to facetag-128's.
_JOINED = {"facetag-256", "facetag-duo"}
#: Models that map the joined encoding (facetag-256's) to fewer numbers with a head of their own.
_JOINED_HEADS = {"facetag-duo": "facetag-duo.npz"}
#: Model name -> (the name its ids and thresholds go by, the backbone's precision, dlib's network's precision).
_MODELS = {"facetag-128": ("facetag-128", "int8", None), "facenet-512": ("facenet-512", "int8", None),
           "facetag-256": ("facetag-256", "int8", "int8"), "facetag-duo": ("facetag-duo", "int8", "int8"),
           "facetag-128-fp32": ("facetag-128", "fp32", None), "facenet-512-fp32": ("facenet-512", "fp32", None),
           "facetag-256-v1": ("facetag-256", "int8", "fp32")}
THRESHOLDS.update({name: THRESHOLDS[base] for name, (base, *_) in _MODELS.items()})
IDENTIFY_THRESHOLDS.update({name: IDENTIFY_THRESHOLDS[base] for name, (base, *_) in _MODELS.items()})
CLUSTER_THRESHOLDS.update({name: CLUSTER_THRESHOLDS[base] for name, (base, *_) in _MODELS.items()})

#: facetag-256 weighs dlib's unit encoding by this before joining it to facetag-128's: the ratio of the two
#: encoders' best pair thresholds (1.183 and 0.440) on the lfw_dev pairs of selection people
#: (bench/quality_levers.py), so that each encoder's distances count alike.
DLIB_WEIGHT = 2.69


@dataclass
class FaceModel:
    """A backbone plus an optional projection head; ``encode`` maps crops to encodings."""

    name: str
    backbone: object
    head: dict | None
    head_sha256: str | None
    dlib: object = None  # facetag.vision.dlib_encoder.DlibEncoder, for a joined model
    joined_head: dict | None = None  # facetag-duo's: the joined encoding -> 128 numbers
    joined_head_sha256: str | None = None

    @property
    def dim(self):
        return _dim(self.head, self.dlib is not None, self.joined_head)

    @property
    def model_id(self):
        return _model_id(_MODELS[self.name][0], self.backbone.backbone_id, self.head_sha256,
                         self.dlib.encoder_id if self.dlib else None, self.joined_head_sha256)

    @property
    def uses_chips(self):
        """Whether :meth:`encode` needs the aligned chips (facetag.vision.alignment.align_face) too."""
        return self.dlib is not None

    @property
    def threshold(self):
        """1:1 verification threshold."""
        return THRESHOLDS[self.name]

    @property
    def identify_threshold(self):
        """1:K identification threshold (stricter)."""
        return IDENTIFY_THRESHOLDS[self.name]

    def encode(self, crops, chips=None):
        """uint8 face crops (N,160,160,3) or (N,3,160,160) -> float32 (N, dim), L2-normalised. A joined model
        (:attr:`uses_chips`) also needs each face's aligned chip, uint8 (N,150,150,3), in ``chips``."""
        encodings = self.project(self.backbone.encode(crops))
        if self.dlib is None:
            return encodings
        if chips is None or len(chips) != len(encodings):
            raise ValueError(f"model {self.name} encodes each face's crop and its aligned chip: give both")
        return self.join(encodings, self.dlib.encode(chips))

    def join(self, encodings, dlib_encodings):
        """facetag-128 ``encodings`` and the same faces' unit ``dlib_encodings`` -> the joined model's, unit length
        (facetag-256's, and through the joined head facetag-duo's)."""
        joined = np.concatenate([encodings, DLIB_WEIGHT * np.asarray(dlib_encodings, np.float32)], axis=1)
        joined = (joined / np.linalg.norm(joined, axis=1, keepdims=True)).astype(np.float32)
        return joined if self.joined_head is None else apply_head(self.joined_head, joined)

    def project(self, backbone_encodings):
        """Apply the head to 512-d backbone encodings (identity for facenet-512)."""
        x = np.asarray(backbone_encodings, np.float32)
        if self.head is None:
            return x
        return apply_head(self.head, x)


def apply_head(head, x):
    """The head's forward pass: [x, relu(x W_h + b_h)] W_o + b_o, L2-normalised.

    A head without ``w_hidden`` is linear. NumPy, not Keras: the head is a few
    hundred KB of weights and needs no framework to run.
    """
    if "w_hidden" in head:
        x = np.concatenate([x, np.maximum(x @ head["w_hidden"] + head["b_hidden"], 0.0)], axis=1)
    out = x @ head["w_out"] + head["b_out"]
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def load_head(filename):
    data = resources.files("facetag.weights").joinpath(filename).read_bytes()
    with np.load(io.BytesIO(data)) as arrays:
        head = {k: arrays[k].astype(np.float32) for k in arrays.files}
    return head, hashlib.sha256(data).hexdigest()


def _dim(head, joined=False, joined_head=None):
    if joined_head is not None:
        return joined_head["w_out"].shape[1]
    return (EMBEDDING_SIZE if head is None else head["w_out"].shape[1]) + (DLIB_ENCODING_SIZE if joined else 0)


def _model_id(base_name, backbone, head_sha256, dlib_id=None, joined_head_sha256=None):
    head = head_sha256[:12] if head_sha256 else "none"
    if joined_head_sha256:
        head += "+" + joined_head_sha256[:12]
    if dlib_id:
        return f"{base_name}:{backbone}+{dlib_id}:{head}:{PREPROCESSING_VERSION}+{CHIP_VERSION}"
    return f"{base_name}:{backbone}:{head}:{PREPROCESSING_VERSION}"


@functools.lru_cache(maxsize=None)
def describe_model(name=DEFAULT_MODEL):
    """``(model_id, encoding_size)`` from the weight files, without loading TensorFlow.

    Jobs call this while the pipeline is built, to stamp and check outputs.
    """
    _check_name(name)
    base, precision, dlib_precision = _MODELS[name]
    head, head_sha = load_head(_HEADS[base]) if base in _HEADS else (None, None)
    joined_head, joined_sha = load_head(_JOINED_HEADS[base]) if base in _JOINED_HEADS else (None, None)
    joined = base in _JOINED
    return (_model_id(base, backbone_id(precision), head_sha, dlib_encoder_id(dlib_precision) if joined else None,
                      joined_sha), _dim(head, joined, joined_head))


def uses_chips(name):
    """Whether the named model encodes each face's aligned chip too (FaceModel.uses_chips), without loading it."""
    _check_name(name)
    return _MODELS[name][0] in _JOINED


def model_named_by(model_id):
    """The model whose encodings carry ``model_id``, or None: what ``--model`` a store or index needs."""
    return next((name for name in available_models() if describe_model(name)[0] == model_id), None)


def model_advice(model_id):
    """How a user goes on with encodings of ``model_id``: the --model that makes them, if this facetag has it."""
    name = model_named_by(model_id)
    return f"pass --model {name} (the model that made them)" if name else "pass the --model that made them"


def identify_threshold_of(model_id):
    """The default 1:K threshold for encodings that carry ``model_id`` (whose first part is the model's name)."""
    return _threshold_of(model_id, IDENTIFY_THRESHOLDS, "1:K")


def cluster_threshold_of(model_id):
    """The default clustering threshold for encodings that carry ``model_id``."""
    return _threshold_of(model_id, CLUSTER_THRESHOLDS, "clustering")


def _threshold_of(model_id, thresholds, what):
    name = model_id.split(":", 1)[0]
    if name not in thresholds:
        raise FaceTagError(f"encodings of model {model_id} have no known {what} threshold: pass --threshold")
    return thresholds[name]


def check_same_model(held_id, used_id, *, holder, user, remedy):
    """Raise ModelMismatchError when ``holder`` (e.g. "the store S") holds encodings of ``held_id`` and
    ``user`` (e.g. "this run") would compare them with encodings of ``used_id``; ``remedy`` says what to do."""
    if held_id != used_id:
        raise ModelMismatchError(f"{holder} holds encodings of model {held_id}, but {user} uses {used_id}: "
                                 f"encodings of different models cannot be compared; {remedy}")


def _check_name(name):
    if name not in available_models():
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(available_models())}")


_shared = {}
_lock = threading.Lock()


def available_models():
    return list(_MODELS)


def load_model(name=DEFAULT_MODEL):
    """The named model, loaded once per process and shared by its threads."""
    _check_name(name)
    with _lock:
        if name not in _shared:
            base, precision, dlib_precision = _MODELS[name]
            head, sha = load_head(_HEADS[base]) if base in _HEADS else (None, None)
            joined_head, joined_sha = load_head(_JOINED_HEADS[base]) if base in _JOINED_HEADS else (None, None)
            _shared[name] = FaceModel(name, load_backbone(precision), head, sha,
                                      load_dlib_encoder(dlib_precision) if base in _JOINED else None, joined_head, joined_sha)
        return _shared[name]
