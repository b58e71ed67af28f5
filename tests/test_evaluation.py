"""Verification scoring: the best threshold, and the scores of colour, grey and mixed pairs apart."""

import numpy as np

from facetag.learn.evaluation import accuracy_at, best_threshold, colour_split


def _best_threshold_by_trying_each(distances, same):
    candidates = np.unique(distances)
    mids = np.concatenate([[candidates[0] - 1e-6], (candidates[:-1] + candidates[1:]) / 2, [candidates[-1] + 1e-6]])
    accuracies = np.array([accuracy_at(distances, same, t) for t in mids])
    best = np.flatnonzero(accuracies == accuracies.max())
    return float(mids[best[len(best) // 2]])


def test_best_threshold_matches_trying_every_threshold_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(2, 200))
        distances = np.round(rng.random(n), int(rng.integers(1, 3)))  # 1-2 decimals: many equal distances
        same = rng.random(n) < rng.random()
        assert best_threshold(distances, same) == _best_threshold_by_trying_each(distances, same)


def test_best_threshold_separates_separable_pairs():
    distances = np.array([0.2, 0.4, 0.9, 1.3])
    same = np.array([True, True, False, False])
    assert best_threshold(distances, same) == 0.65


def test_colour_split_scores_each_kind_with_its_folds_threshold():
    distances = np.array([0.2, 1.5, 0.4, 1.2, 0.9, 1.3, 0.3, 0.8])
    same = np.array([True, False, True, False, True, False, True, False])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    grey_a = np.array([True, True, False, False, True, True, False, True])
    grey_b = np.array([True, True, False, False, True, True, False, False])
    split = colour_split(distances, same, folds, [1.0, 0.85], grey_a, grey_b)
    assert split["grey"] == {"pairs": 4, "same_pairs": 2, "accuracy": 0.75, "roc_auc": 1.0, "tar_at_far_1e-3": 1.0}
    assert split["colour"]["accuracy"] == 1.0 and split["mixed"]["accuracy"] == 0.0 and split["mixed"]["pairs"] == 1
    assert colour_split(distances, same, folds, [1.0, 0.85], grey_a | True, grey_b | True) == {}
