"""Faces -> who they are, from a gallery index."""

import apache_beam as beam
from apache_beam.metrics import Metrics

from facetag.identity.gallery_index import check_index_model, index_id, open_index, read_index_metadata
from facetag.identity.matching import UNKNOWN, apply_label
from facetag.identity.words import resolve_words
from facetag.vision.models import identify_threshold_of


class MatchFaces(beam.DoFn):
    """Face row -> match row of the store: the identity (or ``unknown``), distance and top-k candidates.

    The optional side input ``labels`` (``{face_id: FaceWords}``, see :class:`FaceLabels`)
    holds what people said about faces; it overrides the index. The index is opened once per worker
    process (memory-mapped) in ``setup``.
    """

    def __init__(self, index_dir, index_id, threshold, k=5, search_k=None):
        self.index_dir = index_dir
        self.index_id = index_id
        self.threshold = threshold
        self.k = k
        self.search_k = search_k
        self.known = Metrics.counter("facetag", "faces_identified")
        self.unknown = Metrics.counter("facetag", "faces_unknown")

    def setup(self):
        self.index = open_index(self.index_dir, self.search_k)

    def process(self, face, labels=None):
        match = self.index.identify(face["encoding"], self.threshold, self.k)
        if labels and face["face_id"] in labels:
            words = labels[face["face_id"]]
            match = apply_label(match, self.threshold, words.is_name, words.not_names)
        (self.unknown if match.identity == UNKNOWN else self.known).inc()
        yield {
            "face_id": face["face_id"],
            "path": face["path"],
            "face_index": face["face_index"],
            "box": face["box"],
            "identity": match.identity,
            "distance": match.distance,
            "candidates": [{"identity": i, "distance": d} for i, d in match.candidates],
            "index_id": self.index_id,
        }


def add_match_arguments(parser):
    parser.add_argument("--index", required=True, help="index folder written by the index job or facetag enroll")
    parser.add_argument("--threshold", type=float,
                        help="largest distance still a match (default: the model's 1:K threshold)")
    parser.add_argument("--top_k", type=int, default=5, help="candidate identities kept per face")
    parser.add_argument("--search_k", type=int,
                        help="tree nodes Annoy inspects per query (default: the index's, chosen for its size)")


def matcher(args, model_id):
    """``(MatchFaces for args.index, the index's id)``, after checking the index was built with ``model_id``."""
    meta = read_index_metadata(args.index)
    check_index_model(meta, model_id, "this run")
    threshold = args.threshold if args.threshold is not None else identify_threshold_of(model_id)
    return MatchFaces(args.index, index_id(meta), threshold, args.top_k, args.search_k), index_id(meta)


class FaceLabels(beam.PTransform):
    """The store's ``labels`` rows -> ``(face_id, FaceWords)`` (facetag.identity.words), for MatchFaces'
    side input and the cluster job."""

    def expand(self, labels):
        return (labels
                | "Key labels by face" >> beam.Map(lambda r: (r["face_id"], r))
                | "Labels of each face" >> beam.GroupByKey()
                | "What the words say" >> beam.MapTuple(
                    lambda face_id, said: (face_id, resolve_words(sorted(said, key=lambda r: r["labelled_at"])))))
