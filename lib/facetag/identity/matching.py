"""Distances between encodings, 1:1 verification and 1:K identification."""

from dataclasses import dataclass

import numpy as np

UNKNOWN = "unknown"


def distances(encodings, query):
    """L2 distance from ``query`` (D,) to every row of ``encodings`` (N, D)."""
    encodings = np.asarray(encodings, np.float32)
    diff = encodings - np.asarray(query, np.float32)[None, :]
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def pairwise_distances(queries, gallery):
    """All L2 distances between (Q, D) queries and (N, D) gallery rows, as (Q, N).

    One matrix product: exact search for normalised encodings.
    """
    q = np.asarray(queries, np.float32)
    g = np.asarray(gallery, np.float32)
    sq = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
    return np.sqrt(np.maximum(sq, 0.0))


@dataclass(frozen=True)
class Verification:
    distance: float
    threshold: float

    @property
    def same(self):
        return self.distance <= self.threshold


def verify_encodings(a, b, threshold):
    """Is encoding ``a`` the same person as ``b`` (one encoding or several of that person)?

    Against several enrolled encodings the nearest one decides.
    """
    b = np.atleast_2d(np.asarray(b, np.float32))
    return Verification(float(distances(b, a).min()), threshold)


@dataclass(frozen=True)
class Match:
    identity: str  # the nearest identity, or UNKNOWN past the threshold
    distance: float  # to the nearest gallery encoding
    candidates: tuple  # ((identity, distance), ...) best first, one per identity


def rank_identities(identities, distances, k):
    """The nearest ``k`` identities, each at its nearest distance, best first: ``((identity, distance), ...)``.

    ``identities`` and ``distances`` are the gallery faces found for one query, nearest first.
    """
    candidates, seen = [], set()
    for identity, distance in zip(identities, distances):
        if identity not in seen:
            seen.add(identity)
            candidates.append((identity, float(distance)))
            if len(candidates) == k:
                break
    return tuple(candidates)


def best_match(candidates, threshold):
    """The :class:`Match` of ranked ``candidates``: the nearest identity within ``threshold``, else UNKNOWN."""
    best, distance = candidates[0]
    return Match(best if distance <= threshold else UNKNOWN, distance, candidates)


def apply_label(match, threshold, is_name=None, not_names=()):
    """The match after a person's word on the face: it *is* ``is_name``, or it is none of ``not_names``.

    A person's word overrides the matcher. ``is_name`` takes that name's distance from the candidates
    (or the nearest's when it is not among them); ``not_names`` are struck from the candidates, and the
    nearest remaining one names the face if it is within ``threshold``.
    """
    if is_name:
        distance = next((d for name, d in match.candidates if name == is_name), match.distance)
        return Match(is_name, distance, match.candidates)
    candidates = tuple((name, d) for name, d in match.candidates if name not in not_names)
    if not candidates:
        return Match(UNKNOWN, match.distance, candidates)
    return best_match(candidates, threshold)
