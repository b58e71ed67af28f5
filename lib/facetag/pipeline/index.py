"""Labelled gallery faces -> an index folder (see facetag.identity.gallery_index)."""

import tempfile

import apache_beam as beam
import numpy as np

from facetag.identity.gallery_index import build_index, publish_index


class WriteIndex(beam.DoFn):
    """All gallery faces (one list) -> the index files under ``out_dir``; yields the index metadata.

    Annoy builds into a local file, so the index is built in a temporary
    folder on the worker and then copied to ``out_dir``, which may be remote.
    """

    def __init__(self, out_dir, model_id, trees):
        self.out_dir = out_dir
        self.model_id = model_id
        self.trees = trees

    def process(self, faces):
        faces = sorted(faces, key=lambda f: f["face_id"])  # the same gallery always gives the same items
        with tempfile.TemporaryDirectory() as tmp:
            meta = build_index(
                np.array([f["encoding"] for f in faces], np.float32),
                face_ids=[f["face_id"] for f in faces],
                identities=[f["identity"] for f in faces],
                sources=[f["source"] for f in faces],
                model_id=self.model_id,
                out_dir=tmp,
                trees=self.trees,
            )
            publish_index(tmp, self.out_dir)
        yield meta


class BuildIndex(beam.PTransform):
    """Face records -> index folder; only faces with an identity are indexed."""

    def __init__(self, out_dir, model_id, trees=None):
        super().__init__()
        self.out_dir = out_dir
        self.model_id = model_id
        self.trees = trees

    def expand(self, faces):
        return (
            faces
            | "Keep labelled faces" >> beam.Filter(lambda f: f["identity"] is not None)
            | "Gather the gallery" >> beam.combiners.ToList()
            | "Build Annoy index" >> beam.ParDo(WriteIndex(self.out_dir, self.model_id, self.trees))
        )
