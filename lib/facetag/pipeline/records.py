"""Row layouts of the Parquet files the jobs write, and the model metadata they carry."""

import hashlib
from dataclasses import dataclass, field

import pyarrow as pa

from facetag.vision.models import METRIC

MODEL_ID_KEY = b"facetag.model_id"
ENCODING_SIZE_KEY = b"facetag.encoding_size"
METRIC_KEY = b"facetag.metric"


def model_metadata(model_id, encoding_size):
    return {MODEL_ID_KEY: model_id.encode(), ENCODING_SIZE_KEY: str(encoding_size).encode(),
            METRIC_KEY: METRIC.encode()}


def face_schema(model_id, encoding_size):
    """One row per face. ``identity`` is set on gallery faces, empty on faces to be tagged."""
    return pa.schema(
        [
            ("face_id", pa.string()),
            ("source", pa.string()),
            ("face_index", pa.int32()),
            ("box", pa.list_(pa.int32(), 4)),  # left, top, right, bottom
            ("landmarks", pa.list_(pa.float32(), 10)),  # x, y of eyes, nose, mouth corners
            ("score", pa.float32()),
            ("encoding", pa.list_(pa.float32(), encoding_size)),
            ("identity", pa.string()),
        ],
        metadata=model_metadata(model_id, encoding_size),
    )


@dataclass(frozen=True)
class PhotoBytes:
    """A photo on its way to detection: its name (a path, URI or TFRecord key), its encoded bytes, who it
    shows when known (a gallery photo), and fields it adds to its photos row (``size``, ``mtime``)."""

    source: str
    data: bytes
    identity: str | None = None
    info: dict = field(default_factory=dict)


def face_id(source, face_index):
    """Stable across re-runs: the same photo and face position give the same id."""
    return hashlib.sha1(f"{source}#{face_index}".encode()).hexdigest()[:16]


def faces_model_id(pattern):
    """The one model id of the Parquet files matching ``pattern``; raises if none match or ids differ."""
    from facetag.errors import FaceTagError, ModelMismatchError
    from facetag.io.files import filesystems

    paths = [m.path for m in filesystems().match([pattern])[0].metadata_list]
    if not paths:
        raise FaceTagError(f"no faces Parquet file matches {pattern}")
    models = read_model_metadata(paths)
    if len(models) > 1:
        detail = "; ".join(f"{model_id}: {len(files)} files, e.g. {files[0]}" for model_id, files in models.items())
        raise ModelMismatchError(f"the faces in {pattern} come from different models ({detail}); "
                                 "encode them all with one model")
    return next(iter(models))


def read_model_metadata(paths):
    """``{model_id: [paths]}`` over the footers of the given Parquet files (any FileSystems path)."""
    import pyarrow.parquet as pq

    from facetag.io.files import filesystems

    found = {}
    for path in paths:
        with filesystems(path).open(path) as f:
            metadata = pq.read_schema(f).metadata or {}
        model_id = metadata.get(MODEL_ID_KEY, b"(none: not written by facetag)").decode()
        found.setdefault(model_id, []).append(path)
    return found
