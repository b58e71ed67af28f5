"""How well a clustering of faces matches the true people: BCubed and pairwise precision, recall and F1.

Unclustered faces (label -1) count as clusters of their own: leaving a face out is a missed merge,
never a wrong one.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Quality:
    bcubed_precision: float  # mean over faces: share of its cluster that is its person
    bcubed_recall: float  # mean over faces: share of its person that is in its cluster
    bcubed_f1: float
    pairwise_precision: float  # of the face pairs put together, the share that are one person
    pairwise_recall: float  # of the pairs of one person, the share put together
    pairwise_f1: float


def _f1(precision, recall):
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _pairs(counts):
    counts = np.asarray(counts, np.float64)
    return float(np.sum(counts * (counts - 1) / 2))


def clustering_quality(labels, truth):
    """:class:`Quality` of cluster ``labels`` (-1: unclustered) against the true person of each face."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    if len(labels) == 0:
        raise ValueError("no faces to measure")
    labels = np.where(labels < 0, labels.max() + 1 + np.arange(len(labels)), labels)  # each left-out face alone
    _, cluster = np.unique(labels, return_inverse=True)
    _, person = np.unique(truth, return_inverse=True)
    _, cell, cell_size = np.unique(cluster * (person.max() + 1) + person, return_inverse=True, return_counts=True)
    cluster_size, person_size = np.bincount(cluster), np.bincount(person)
    shared = cell_size[cell]  # per face: faces of its cluster that are its person (itself included)
    precision = float(np.mean(shared / cluster_size[cluster]))
    recall = float(np.mean(shared / person_size[person]))
    together, same, right = _pairs(cluster_size), _pairs(person_size), _pairs(cell_size)
    pair_precision = right / together if together else 1.0
    pair_recall = right / same if same else 1.0
    return Quality(precision, recall, _f1(precision, recall), pair_precision, pair_recall,
                   _f1(pair_precision, pair_recall))
