"""Verification scoring: the best threshold found by counting matches the one found by trying each."""

import numpy as np

from facetag.evaluation import accuracy_at, best_threshold


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

