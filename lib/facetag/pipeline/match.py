"""Faces -> who they are, from a gallery index."""

import apache_beam as beam
from apache_beam.metrics import Metrics

from facetag.gallery_index import open_index
from facetag.matching import UNKNOWN


class MatchFaces(beam.DoFn):
    """Face record -> match record: the identity (or ``unknown``), distance and top-k candidates.

    The index is opened once per worker process (memory-mapped) in ``setup``.
    """

    def __init__(self, index_dir, threshold, k=5, search_k=None):
        self.index_dir = index_dir
        self.threshold = threshold
        self.k = k
        self.search_k = search_k
        self.known = Metrics.counter("facetag", "faces_identified")
        self.unknown = Metrics.counter("facetag", "faces_unknown")

    def setup(self):
        self.index = open_index(self.index_dir, self.search_k)

    def process(self, face):
        match = self.index.identify(face["encoding"], self.threshold, self.k)
        (self.unknown if match.identity == UNKNOWN else self.known).inc()
        yield {
            "face_id": face["face_id"],
            "source": face["source"],
            "face_index": face["face_index"],
            "box": face["box"],
            "identity": match.identity,
            "distance": match.distance,
            "candidates": [{"identity": i, "distance": d} for i, d in match.candidates],
        }
