"""The archive store's tables: their names, their schemas and the values their columns take.

Each table is a Delta table readable without facetag (Spark, DuckDB, Polars, pandas via ``deltalake``).
"""

import pyarrow as pa

TABLES = ("photos", "faces", "matches", "clusters", "labels")

#: ``photos.outcome`` values: a photo ends in exactly one.
FACES, NO_FACE, FAILED, REMOVED = "faces", "no_face", "failed", "removed"

#: Schema metadata key on ``faces.encoding`` naming the model that made the encodings.
MODEL_ID_FIELD_KEY = "facetag.model_id"

PHOTOS_SCHEMA = pa.schema([
    ("path", pa.string()),
    ("size", pa.int64()),  # bytes; null when the path could not be read at all
    ("mtime", pa.float64()),  # seconds since the epoch, as the file system reports it
    ("sha256", pa.string()),  # of the file's bytes; faces are reused for any path with the same content
    ("outcome", pa.string()),  # faces | no_face | failed | removed
    ("reason", pa.string()),  # why no_face or failed
    ("faces", pa.int32()),
    ("width", pa.int32()),  # displayed size (EXIF orientation applied)
    ("height", pa.int32()),
    ("run_id", pa.string()),  # the run that last read this photo (or found it gone)
])

CANDIDATE = pa.struct([("identity", pa.string()), ("distance", pa.float32())])

MATCHES_SCHEMA = pa.schema([
    ("face_id", pa.string()),
    ("path", pa.string()),
    ("face_index", pa.int32()),
    ("box", pa.list_(pa.int32())),  # left, top, right, bottom
    ("identity", pa.string()),  # or "unknown"
    ("distance", pa.float32()),
    ("candidates", pa.list_(CANDIDATE)),
    ("index_id", pa.string()),  # the gallery index the match was made with
])


CLUSTERS_SCHEMA = pa.schema([
    ("face_id", pa.string()),
    ("cluster_id", pa.int64()),  # null: in no cluster (alone, or only like faces of its own photo)
    ("cluster_size", pa.int32()),
    ("distance", pa.float32()),  # to the cluster's centre
])

LABELS_SCHEMA = pa.schema([
    ("face_id", pa.string()),
    ("name", pa.string()),
    ("verdict", pa.string()),  # "is": the face is this person; "not": it is not
    ("via", pa.string()),  # how it was given: "cluster 12", "face", "review page"
    ("labelled_at", pa.string()),  # UTC, ISO 8601
    # Since the review server (2026-12-06); null in older rows. The verdicts: facetag.identity.words.
    ("action", pa.string()),  # the id of the action that said it (what an undo takes back)
    ("same_as", pa.string()),  # verdict "same": the face this one is the same person as
])


def faces_schema(model_id):
    return pa.schema([
        ("face_id", pa.string()),
        ("path", pa.string()),
        ("photo_sha256", pa.string()),
        ("face_index", pa.int32()),
        ("box", pa.list_(pa.int32())),  # left, top, right, bottom, in the displayed photo's pixels
        ("landmarks", pa.list_(pa.float32())),  # x, y of eyes, nose, mouth corners
        ("score", pa.float32()),
        # facetag.vision.quality, 0-1; null in rows written before facetag computed it (2026-12-04): unknown.
        ("quality", pa.float32()),
        pa.field("encoding", pa.list_(pa.float32()), metadata={MODEL_ID_FIELD_KEY: model_id}),
    ])


def schema_of(name, model_id):
    return {"photos": PHOTOS_SCHEMA, "faces": faces_schema(model_id), "matches": MATCHES_SCHEMA,
            "clusters": CLUSTERS_SCHEMA, "labels": LABELS_SCHEMA}[name]
