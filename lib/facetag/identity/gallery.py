"""A gallery of known people, searched exactly in memory (1:K identification).

For galleries too large for exact search, the Beam ``index`` job builds an
Annoy index of the same encodings.
"""

import numpy as np

from facetag.errors import FaceTagError, ImageError
from facetag.identity.matching import best_match, pairwise_distances, rank_identities
from facetag.io.datasets import read_labelled
from facetag.io.images import load_image
from facetag.vision.analyzer import FaceAnalyzer
from facetag.vision.detection import main_face
from facetag.vision.models import check_same_model, identify_threshold_of, model_advice


class Gallery:
    """Known faces and their identities; ``identify`` names the nearest one or says unknown.

    ``threshold`` is the largest distance still accepted as a match (default:
    the model's identification threshold, measured on lfw_dev, stricter than
    the 1:1 one because a stranger meets every gallery face); ``k`` how many candidate identities a
    match lists. ``fit(encodings, identities, model_id)`` stores the gallery
    and returns self; fitted state: ``encodings_``, ``identities_``,
    ``model_id_``, and ``skipped_`` (photos ``from_folder`` could not enrol,
    with the reason).
    """

    def __init__(self, threshold=None, k=5):
        self.threshold = threshold
        self.k = k

    def fit(self, encodings, identities, model_id):
        encodings = np.asarray(encodings, np.float32)
        if encodings.ndim != 2 or len(encodings) != len(identities):
            raise ValueError(f"need one identity per encoding row, got {encodings.shape} and {len(identities)}")
        self.encodings_ = encodings
        self.identities_ = np.asarray(identities, dtype=object)
        self.model_id_ = model_id
        self.skipped_ = []
        return self

    @classmethod
    def from_folder(cls, folder, analyzer=None, threshold=None, k=5):
        """Enrol ``folder/Name/*.jpg`` (or a ``file,identity`` CSV): the main face of each photo.

        Photos with no face, or that cannot be read, are skipped and listed in ``skipped_``.
        """
        analyzer = analyzer or FaceAnalyzer()
        encodings, identities, skipped = [], [], []
        for path, identity in read_labelled(folder):
            try:
                image = load_image(path)
            except ImageError as e:
                skipped.append((path, e.reason))
                continue
            faces = analyzer.analyze(image)
            face = main_face(faces, image.shape) if faces else None
            if face is None:
                skipped.append((path, "no face found"))
                continue
            encodings.append(face.encoding)
            identities.append(identity)
        if not encodings:
            raise FaceTagError(f"no face could be enrolled from {folder}")
        gallery = cls(threshold=threshold, k=k).fit(np.stack(encodings), identities, analyzer.face_model.model_id)
        gallery.skipped_ = skipped
        return gallery

    @property
    def identities(self):
        return sorted(set(self.identities_))

    def _threshold(self):
        return self.threshold if self.threshold is not None else identify_threshold_of(self.model_id_)

    def check_model(self, model_id):
        check_same_model(self.model_id_, model_id, holder="the gallery", user="the query",
                         remedy=f"{model_advice(self.model_id_)}, or re-enrol the gallery with the query's model")

    def identify_encodings(self, encodings, model_id):
        """One :class:`Match` per query encoding (exact search)."""
        self.check_model(model_id)
        encodings = np.atleast_2d(np.asarray(encodings, np.float32))
        if len(encodings) == 0:
            return []
        threshold = self._threshold()
        return [self._match(row, threshold) for row in pairwise_distances(encodings, self.encodings_)]

    def _match(self, row, threshold):
        order = np.argsort(row, kind="stable")
        return best_match(rank_identities(self.identities_[order], row[order], self.k), threshold)

    def encodings_of(self, identity):
        rows = self.encodings_[self.identities_ == identity]
        if len(rows) == 0:
            raise FaceTagError(f"{identity!r} is not enrolled; known people: {', '.join(self.identities)}")
        return rows
